import WireGuardNoise
import WireGuardReplay

/// One session's keys in use: what a completed handshake left, when it was made, the counter of the
/// next message sent with it, and the replay window of what was received with it.
///
/// A class because three places name the same keypair (a peer's slot, the index table's entry, a packet
/// in flight) and the counters must be one. Nothing here is atomic or locked: the data plane owns every
/// keypair on one thread (its plane thread), which is the only one to send, receive or rotate with it.
/// If sending and receiving ever move to separate threads, `sendCounter` needs an atomic and the window
/// a lock, as the kernel's do.
public final class Keypair {
    /// The keys and indices from the handshake.
    public let session: Session
    /// When the handshake completed, in the caller's monotonic nanoseconds.
    public let createdAt: UInt64
    /// The counter the next message sent will carry: messages sent so far. (Settable inside the module
    /// only so tests can reach the message limits without 2^60 sends.)
    public internal(set) var sendCounter: UInt64 = 0
    /// False once a send found the key too old or out of counters: it is not tried again.
    public private(set) var isSendingValid = true
    /// False once a receive found the key too old: later packets on it are refused without a look.
    public private(set) var isReceivingValid = true
    private var replay = ReplayWindow()

    public init(session: Session, createdAt: UInt64) {
        self.session = session
        self.createdAt = createdAt
    }

    /// This side's index: transport messages from the peer carry it as receiver index.
    public var localIndex: UInt32 { session.localIndex }
    /// The peer's index, written into every transport message sent with this keypair.
    public var remoteIndex: UInt32 { session.remoteIndex }
    /// True when this side initiated the handshake; only the initiator re-keys on age.
    public var isInitiator: Bool { session.isInitiator }

    /// Whether a message may be sent with this keypair at `now`: not retired, younger than
    /// REJECT_AFTER_TIME, counters left.
    public func canSend(now: UInt64) -> Bool {
        isSendingValid && !WireGuardTiming.hasExpired(createdAt, after: WireGuardTiming.rejectAfterTime, now: now)
            && sendCounter < WireGuardTiming.rejectAfterMessages
    }

    /// The counter for the next message to send, consumed; nil when the keypair may no longer send
    /// (it is then retired for sending, and the caller stages the packet and asks for a handshake).
    public func takeSendCounter(now: UInt64) -> UInt64? {
        guard canSend(now: now) else {
            isSendingValid = false
            return nil
        }
        defer { sendCounter += 1 }
        return sendCounter
    }

    /// Whether packets received with this keypair may still be opened at `now` (younger than
    /// REJECT_AFTER_TIME); a false answer retires it for receiving.
    public func canReceive(now: UInt64) -> Bool {
        if isReceivingValid && WireGuardTiming.hasExpired(createdAt, after: WireGuardTiming.rejectAfterTime, now: now) {
            isReceivingValid = false
        }
        return isReceivingValid
    }

    /// Whether `counter` could still be accepted: ask before decrypting to skip work on a replay.
    public func wouldAccept(counter: UInt64) -> Bool {
        replay.wouldAccept(counter)
    }

    /// Records `counter` of a packet that authenticated; false for a replay or a counter past the
    /// window or past REJECT_AFTER_MESSAGES (then the packet is dropped, as a replay).
    public func acceptReceived(counter: UInt64) -> Bool {
        replay.accept(counter)
    }
}

/// One peer's keypairs as the kernel's noise.c keeps them: `current` sends, `previous` still receives
/// what was in flight when `current` took over, and `next` is a responder's keypair that waits for the
/// initiator's first transport message (the proof the initiator has the keys too) before it may send.
///
/// Every method that drops a keypair returns it, so the caller can take its local index out of the
/// index table: a keypair leaving its slot must stop being found by index.
public struct Keypairs {
    public private(set) var current: Keypair?
    public private(set) var previous: Keypair?
    public private(set) var next: Keypair?

    public init() {}

    /// Installs the keypair of a handshake that just completed; returns the keypairs it displaced.
    ///
    /// As initiator (the response arrived, so the peer has the keys) it becomes `current` at once:
    /// a pending `next` becomes `previous` and the old `current` goes, else the old `current` becomes
    /// `previous`. As responder it becomes `next`, replacing any older `next`, and `previous` goes,
    /// because the confirmation will slide `current` into `previous`.
    public mutating func install(_ keypair: Keypair) -> [Keypair] {
        var retired: [Keypair] = []
        if keypair.isInitiator {
            if let pending = next {
                // The kernel keeps the unconfirmed next as previous rather than dropping it: the peer may
                // still send on it (its response crossed ours). The old current goes.
                next = nil
                if let current { retired.append(current) }
                if let previous { retired.append(previous) }
                previous = pending
            } else {
                if let previous { retired.append(previous) }
                previous = current
            }
            current = keypair
        } else {
            if let next { retired.append(next) }
            if let previous { retired.append(previous) }
            next = keypair
            previous = nil
        }
        return retired
    }

    /// Called for every authenticated transport message received with `keypair`: when that is `next`,
    /// the peer has proven it holds the keys, so `next` becomes `current`, `current` becomes `previous`
    /// and the old `previous` is returned to retire. `confirmed` true is the responder's handshake
    /// completion (timers' `handshakeCompleted`, and staged packets may now go).
    public mutating func receivedData(on keypair: Keypair) -> (confirmed: Bool, retired: Keypair?) {
        guard let pending = next, pending === keypair else { return (false, nil) }
        let retired = previous
        previous = current
        current = pending
        next = nil
        return (true, retired)
    }

    /// The keypair to send with at `now`: `current` while it may send, else nil (stage the packet and
    /// ask for a handshake; a responder's unconfirmed `next` never sends).
    public func sendingKeypair(now: UInt64) -> Keypair? {
        guard let current, current.canSend(now: now) else { return nil }
        return current
    }

    /// The keypair whose local index is `index`, among the three: how a received transport message
    /// (whose receiver index the index table sent to this peer) finds its keys.
    func keypair(localIndex index: UInt32) -> Keypair? {
        for candidate in [current, previous, next] {
            if let candidate, candidate.localIndex == index { return candidate }
        }
        return nil
    }

    /// Drops all three (zeroing key material after 3 x REJECT_AFTER_TIME, or a peer removed); returns them.
    public mutating func removeAll() -> [Keypair] {
        defer { (current, previous, next) = (nil, nil, nil) }
        return [current, previous, next].compactMap { $0 }
    }
}
