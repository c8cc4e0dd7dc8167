import WireGuardNoise

/// Why a handshake initiation is due; the data plane logs it, and for `.retransmit` and `.noReply`
/// also forgets the endpoint's local source address (it may be what broke), as the kernel does.
public enum HandshakeReason: Equatable, Sendable {
    /// No response within REKEY_TIMEOUT + jitter; `attempt` counts initiations so far including this one.
    case retransmit(attempt: Int)
    /// Data was sent and nothing came back for KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + jitter.
    case noReply
    /// Packets to send and no keypair that may send them.
    case noSession
    /// The current key has sent more than REKEY_AFTER_MESSAGES messages.
    case rekeyAfterMessages
    /// This side initiated the current key, and it is REKEY_AFTER_TIME old.
    case rekeyAfterTime
    /// Receiving on an initiator's key that has less than KEEPALIVE_TIMEOUT + REKEY_TIMEOUT left before
    /// REJECT_AFTER_TIME: the last chance to re-key before traffic stops (once per handshake).
    case rekeyBeforeReject
}

/// Why a keepalive (an empty transport message) is due.
public enum KeepaliveReason: Equatable, Sendable {
    /// Data arrived and nothing was sent back for KEEPALIVE_TIMEOUT: tell the peer its packets arrive.
    case passive
    /// The configured persistent-keepalive interval passed without any authenticated packet.
    case persistent
}

/// What the data plane should do for a peer now.
public enum TimerAction: Equatable, Sendable {
    /// Make and send a handshake initiation, then report it with `packetSent(.handshakeInitiation)`.
    case initiateHandshake(HandshakeReason)
    /// Send an empty transport message (or any staged packets instead, which serve as well).
    case sendKeepalive(KeepaliveReason)
    /// Zero the handshake state and every keypair (and free their indices): no new keys for
    /// 3 x REJECT_AFTER_TIME.
    case expireSessions
    /// Retries went on for REKEY_ATTEMPT_TIME without a response: drop the staged packets. No more
    /// initiations until new traffic asks for one.
    case giveUp
}

/// Kinds of authenticated packets, for the send and receive events.
public enum AuthenticatedPacket: Equatable, Sendable {
    /// A transport message with a payload.
    case data
    /// A transport message with an empty payload.
    case keepalive
    case handshakeInitiation
    case handshakeResponse
}

/// One peer's timers, as the kernel's timers.c and wireguard-go's timers.go run them, without the timers:
/// events record deadlines, `dueActions(now:)` fires those that passed and says what to do, and
/// `nextDeadline` is when to ask next. The caller's clock is monotonic nanoseconds passed in as `now`;
/// nothing here reads a clock, so tests drive it with a fake one.
///
/// The five timers: retransmit handshake (REKEY_TIMEOUT + jitter after an initiation), send keepalive
/// (KEEPALIVE_TIMEOUT after data arrived), new handshake (KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + jitter
/// after data was sent with no answer), zero key material (3 x REJECT_AFTER_TIME after a session was
/// derived), persistent keepalive (the configured interval after any authenticated packet).
/// Key freshness on send and receive is asked of `afterSending` and `afterReceiving`, which the kernel
/// does in send.c and receive.c.
public struct PeerTimers {
    /// Nanoseconds in 0..<REKEY_TIMEOUT_JITTER_MAX, drawn afresh for every jittered deadline.
    public typealias Jitter = () -> UInt64

    private let jitter: Jitter
    /// Seconds between persistent keepalives; 0 turns them off.
    public private(set) var persistentKeepaliveInterval: UInt16

    private var retransmitHandshakeAt: UInt64?
    private var sendKeepaliveAt: UInt64?
    private var newHandshakeAt: UInt64?
    private var zeroKeyMaterialAt: UInt64?
    private var persistentKeepaliveAt: UInt64?

    /// Retransmissions of the handshake in flight (0 after the first initiation).
    public private(set) var handshakeAttempts = 0
    /// Data arrived while a keepalive was already due: one more after it.
    private var needAnotherKeepalive = false
    /// The last-minute re-key on receive was asked for this handshake already.
    private var sentLastMinuteHandshake = false
    /// When the last initiation went out: initiations are at least REKEY_TIMEOUT apart.
    public private(set) var lastSentHandshake: UInt64?

    /// `jitter` defaults to uniform draws from `random`; tests pass a constant.
    public init(persistentKeepaliveInterval: UInt16 = 0, jitter: @escaping Jitter) {
        self.persistentKeepaliveInterval = persistentKeepaliveInterval
        self.jitter = jitter
    }

    public init(persistentKeepaliveInterval: UInt16 = 0, random: some RandomSource = SystemRandom()) {
        // Modulo bias over 2^32 for a range of 3.33e8 is below 8%, and only spreads retries: harmless.
        self.init(persistentKeepaliveInterval: persistentKeepaliveInterval) {
            UInt64(random.makeIndex()) % WireGuardTiming.rekeyTimeoutJitterMax
        }
    }

    // MARK: Events

    /// An authenticated packet of `kind` was sent to the peer at `now` (report an initiation even when
    /// the socket refused it, as the kernel arms the retransmission regardless: the retry is the remedy).
    public mutating func packetSent(_ kind: AuthenticatedPacket, now: UInt64) {
        anyAuthenticatedPacketTraversal(now: now)
        // Anything authenticated tells the peer we are alive, so a pending passive keepalive is moot.
        sendKeepaliveAt = nil
        switch kind {
        case .data:
            // Expect an answer; without one, the path or the session may be dead.
            if newHandshakeAt == nil {
                newHandshakeAt = now + WireGuardTiming.keepaliveTimeout + WireGuardTiming.rekeyTimeout + drawJitter()
            }
        case .handshakeInitiation:
            lastSentHandshake = now
            retransmitHandshakeAt = now + WireGuardTiming.rekeyTimeout + drawJitter()
        case .keepalive, .handshakeResponse:
            break
        }
    }

    /// An authenticated packet of `kind` arrived from the peer at `now`.
    public mutating func packetReceived(_ kind: AuthenticatedPacket, now: UInt64) {
        // The peer is alive and answering: no need to re-handshake for silence.
        newHandshakeAt = nil
        anyAuthenticatedPacketTraversal(now: now)
        if kind == .data {
            if sendKeepaliveAt == nil {
                sendKeepaliveAt = now + WireGuardTiming.keepaliveTimeout
            } else {
                needAnotherKeepalive = true
            }
        }
    }

    /// A handshake completed: the initiator consumed the response, or the responder's `next` keypair
    /// was confirmed by the first transport message. Retries stop and counting starts over.
    public mutating func handshakeCompleted(now: UInt64) {
        retransmitHandshakeAt = nil
        handshakeAttempts = 0
        sentLastMinuteHandshake = false
    }

    /// Session keys were derived (responder: before sending the response; initiator: on the response):
    /// all key material goes 3 x REJECT_AFTER_TIME later unless a newer session comes first.
    public mutating func sessionDerived(now: UInt64) {
        zeroKeyMaterialAt = now + 3 * WireGuardTiming.rejectAfterTime
    }

    /// Changes the persistent-keepalive interval (0: off). Turning it on asks for a keepalive at once, as
    /// `wg set` does, so a peer behind NAT opens its mapping without waiting for traffic.
    public mutating func setPersistentKeepalive(_ seconds: UInt16, now: UInt64) -> TimerAction? {
        let wasOff = persistentKeepaliveInterval == 0
        persistentKeepaliveInterval = seconds
        if seconds == 0 {
            persistentKeepaliveAt = nil
            return nil
        }
        persistentKeepaliveAt = now + UInt64(seconds) * WireGuardTiming.nanosecondsPerSecond
        return wasOff ? .sendKeepalive(.persistent) : nil
    }

    // MARK: Requests from the packet paths

    /// Packets wait and no keypair may send them: an initiation, unless one went out less than
    /// REKEY_TIMEOUT ago (then the retransmission timer already covers it).
    public mutating func needSession(now: UInt64) -> TimerAction? {
        requestHandshake(.noSession, isRetry: false, now: now)
    }

    /// After sending with `current` (the keypair just used): a re-key when it has sent more than
    /// REKEY_AFTER_MESSAGES, or when this side initiated it and it is REKEY_AFTER_TIME old.
    public mutating func afterSending(current: Keypair?, now: UInt64) -> TimerAction? {
        guard let current, current.isSendingValid else { return nil }
        if current.sendCounter > WireGuardTiming.rekeyAfterMessages {
            return requestHandshake(.rekeyAfterMessages, isRetry: false, now: now)
        }
        if current.isInitiator,
           WireGuardTiming.hasExpired(current.createdAt, after: WireGuardTiming.rekeyAfterTime, now: now) {
            return requestHandshake(.rekeyAfterTime, isRetry: false, now: now)
        }
        return nil
    }

    /// After receiving a transport message, with the peer's `current` keypair: if this side initiated
    /// it and it has only KEEPALIVE_TIMEOUT + REKEY_TIMEOUT left before REJECT_AFTER_TIME, one re-key
    /// per handshake (a peer that only receives would otherwise never re-key before the key dies).
    public mutating func afterReceiving(current: Keypair?, now: UInt64) -> TimerAction? {
        guard !sentLastMinuteHandshake, let current, current.isSendingValid, current.isInitiator else { return nil }
        let lastMinute = WireGuardTiming.rejectAfterTime - WireGuardTiming.keepaliveTimeout - WireGuardTiming.rekeyTimeout
        guard WireGuardTiming.hasExpired(current.createdAt, after: lastMinute, now: now) else { return nil }
        sentLastMinuteHandshake = true
        return requestHandshake(.rekeyBeforeReject, isRetry: false, now: now)
    }

    // MARK: Queries

    /// The earliest pending deadline, nil when none: sleep until then (or until a packet), then call
    /// `dueActions`.
    public var nextDeadline: UInt64? {
        // Asked of every peer after every batch: compared in place, without building an array.
        let earliest = min(min(retransmitHandshakeAt ?? .max, sendKeepaliveAt ?? .max), min(newHandshakeAt ?? .max,
                           min(zeroKeyMaterialAt ?? .max, persistentKeepaliveAt ?? .max)))
        return earliest == .max ? nil : earliest
    }

    /// Fires every timer whose deadline is at or before `now`, as its kernel expiry function would, and
    /// returns what to do, in that order. Calling it late fires each timer once, not once per period.
    public mutating func dueActions(now: UInt64) -> [TimerAction] {
        var actions: [TimerAction] = []
        if fire(&retransmitHandshakeAt, now: now) {
            if handshakeAttempts > WireGuardTiming.maxTimerHandshakes {
                // Stop trying: staged packets go, nothing more is sent, and whatever a partial exchange
                // left is zeroed later unless that is already scheduled.
                sendKeepaliveAt = nil
                actions.append(.giveUp)
                if zeroKeyMaterialAt == nil {
                    zeroKeyMaterialAt = now + 3 * WireGuardTiming.rejectAfterTime
                }
            } else {
                handshakeAttempts += 1
                if let action = requestHandshake(.retransmit(attempt: handshakeAttempts + 1), isRetry: true, now: now) {
                    actions.append(action)
                }
            }
        }
        if fire(&newHandshakeAt, now: now),
           let action = requestHandshake(.noReply, isRetry: false, now: now),
           !actions.contains(where: { if case .initiateHandshake = $0 { true } else { false } }) {
            // The retransmission above already sends one; a second in the same instant would only be
            // refused by the peer's rate limit.
            actions.append(action)
        }
        if fire(&sendKeepaliveAt, now: now) {
            actions.append(.sendKeepalive(.passive))
            if needAnotherKeepalive {
                needAnotherKeepalive = false
                sendKeepaliveAt = now + WireGuardTiming.keepaliveTimeout
            }
        }
        if fire(&persistentKeepaliveAt, now: now), persistentKeepaliveInterval > 0,
           !actions.contains(.sendKeepalive(.passive)) {
            // One empty packet serves both keepalives.
            actions.append(.sendKeepalive(.persistent))
        }
        if fire(&zeroKeyMaterialAt, now: now) {
            actions.append(.expireSessions)
        }
        return actions
    }

    // MARK: Internals

    /// Before a packet with authentication is sent, or after one is received: the persistent keepalive
    /// is due one interval after the last such packet, whichever way it went.
    private mutating func anyAuthenticatedPacketTraversal(now: UInt64) {
        if persistentKeepaliveInterval > 0 {
            persistentKeepaliveAt = now + UInt64(persistentKeepaliveInterval) * WireGuardTiming.nanosecondsPerSecond
        }
    }

    /// The kernel's wg_packet_send_queued_handshake_initiation: a fresh request (not a retry) restarts
    /// the attempt count; either is refused while the last initiation is younger than REKEY_TIMEOUT.
    private mutating func requestHandshake(_ reason: HandshakeReason, isRetry: Bool, now: UInt64) -> TimerAction? {
        if !isRetry { handshakeAttempts = 0 }
        if let last = lastSentHandshake, !WireGuardTiming.hasExpired(last, after: WireGuardTiming.rekeyTimeout, now: now) {
            return nil
        }
        return .initiateHandshake(reason)
    }

    private func drawJitter() -> UInt64 {
        min(jitter(), WireGuardTiming.rekeyTimeoutJitterMax - 1)
    }

    /// True (and the timer cleared) when `deadline` is set and has passed.
    private func fire(_ deadline: inout UInt64?, now: UInt64) -> Bool {
        guard let due = deadline, due <= now else { return false }
        deadline = nil
        return true
    }
}
