import Testing
import WireGuardNoise
@testable import WireGuardPeers

private let second = WireGuardTiming.nanosecondsPerSecond
private let millisecond = WireGuardTiming.nanosecondsPerMillisecond

/// Timers against a fake clock: `now` is whatever the test says, jitter is a constant 100 ms.
@Suite struct PeerTimersTests {
    static let jitter = 100 * millisecond
    let pair: SessionPair
    init() throws { pair = try SessionPair() }

    func timers(persistentKeepalive: UInt16 = 0) -> PeerTimers {
        PeerTimers(persistentKeepaliveInterval: persistentKeepalive) { Self.jitter }
    }

    func keypair(initiator: Bool, at time: UInt64) throws -> Keypair {
        let sessions = try pair.handshake(initiatorIndex: 1, responderIndex: 2)
        return Keypair(session: initiator ? sessions.initiator : sessions.responder, createdAt: time)
    }

    @Test func nothingHappenedNothingIsDue() {
        var t = timers()
        #expect(t.nextDeadline == nil)
        #expect(t.dueActions(now: 1000 * second).isEmpty)
    }

    @Test func sentDataAndHeardNothingInitiatesAHandshake() {
        var t = timers()
        let start = 50 * second
        t.packetSent(.data, now: start)
        let due = start + WireGuardTiming.keepaliveTimeout + WireGuardTiming.rekeyTimeout + Self.jitter
        #expect(t.nextDeadline == due)
        // More data does not push the deadline: it counts from the first unanswered packet.
        t.packetSent(.data, now: start + 3 * second)
        #expect(t.nextDeadline == due)
        #expect(t.dueActions(now: due - 1).isEmpty)
        #expect(t.dueActions(now: due) == [.initiateHandshake(.noReply)])
        #expect(t.dueActions(now: due + 60 * second).isEmpty, "fires once")
    }

    @Test func anyAuthenticatedReplyCancelsTheNoReplyHandshake() {
        var t = timers()
        t.packetSent(.data, now: 0)
        t.packetReceived(.keepalive, now: 4 * second)
        #expect(t.nextDeadline == nil)
        #expect(t.dueActions(now: 60 * second).isEmpty)
    }

    @Test func receivedDataAndSentNothingSendsAKeepalive() {
        var t = timers()
        t.packetReceived(.data, now: 0)
        #expect(t.nextDeadline == WireGuardTiming.keepaliveTimeout)
        #expect(t.dueActions(now: WireGuardTiming.keepaliveTimeout - 1).isEmpty)
        #expect(t.dueActions(now: WireGuardTiming.keepaliveTimeout) == [.sendKeepalive(.passive)])
        t.packetSent(.keepalive, now: WireGuardTiming.keepaliveTimeout)
        #expect(t.nextDeadline == nil, "a keepalive expects no answer")
    }

    @Test func receivedKeepalivesNeedNoAnswer() {
        var t = timers()
        t.packetReceived(.keepalive, now: 0)
        #expect(t.nextDeadline == nil)
    }

    @Test func sendingAnythingAuthenticatedCancelsThePassiveKeepalive() {
        var t = timers()
        t.packetReceived(.data, now: 0)
        t.packetSent(.handshakeResponse, now: 2 * second)
        #expect(t.dueActions(now: 30 * second).isEmpty)
    }

    @Test func dataArrivingWhileAKeepaliveIsDueAsksForAnother() {
        var t = timers()
        t.packetReceived(.data, now: 0)
        t.packetReceived(.data, now: 4 * second)
        #expect(t.dueActions(now: 10 * second) == [.sendKeepalive(.passive)])
        // Re-armed at expiry, as the kernel does (the keepalive's own send then cancels it, there too).
        #expect(t.nextDeadline == 20 * second)
    }

    @Test func anInitiatorsSessionOlderThanRekeyAfterTimeRekeysOnTheNextSend() throws {
        var t = timers()
        let mine = try keypair(initiator: true, at: 0)
        #expect(t.afterSending(current: mine, now: WireGuardTiming.rekeyAfterTime - 1) == nil)
        #expect(t.afterSending(current: mine, now: WireGuardTiming.rekeyAfterTime) == .initiateHandshake(.rekeyAfterTime))
        // The responder's side never re-keys on age (the two would collide); it waits for the initiator.
        let theirs = try keypair(initiator: false, at: 0)
        var u = timers()
        #expect(u.afterSending(current: theirs, now: WireGuardTiming.rekeyAfterTime) == nil)
        #expect(u.afterSending(current: nil, now: WireGuardTiming.rekeyAfterTime) == nil)
    }

    @Test func eitherSideRekeysAfterMessages() throws {
        var t = timers()
        let theirs = try keypair(initiator: false, at: 0)
        theirs.sendCounter = WireGuardTiming.rekeyAfterMessages
        #expect(t.afterSending(current: theirs, now: 1) == nil)
        theirs.sendCounter += 1
        #expect(t.afterSending(current: theirs, now: 1) == .initiateHandshake(.rekeyAfterMessages))
    }

    @Test func initiationsAreAtLeastRekeyTimeoutApart() throws {
        var t = timers()
        #expect(t.needSession(now: 0) == .initiateHandshake(.noSession))
        t.packetSent(.handshakeInitiation, now: 0)
        #expect(t.needSession(now: WireGuardTiming.rekeyTimeout - 1) == nil)
        let old = try keypair(initiator: true, at: 0)
        #expect(t.afterSending(current: old, now: WireGuardTiming.rekeyTimeout - 1) == nil)
        #expect(t.needSession(now: WireGuardTiming.rekeyTimeout) == .initiateHandshake(.noSession))
    }

    @Test func receivingOnAnAgingInitiatorKeyRekeysOnceAtTheLastMinute() throws {
        var t = timers()
        let mine = try keypair(initiator: true, at: 0)
        let lastMinute = WireGuardTiming.rejectAfterTime - WireGuardTiming.keepaliveTimeout - WireGuardTiming.rekeyTimeout
        #expect(lastMinute == 165 * second)
        #expect(t.afterReceiving(current: mine, now: lastMinute - 1) == nil)
        #expect(t.afterReceiving(current: mine, now: lastMinute) == .initiateHandshake(.rekeyBeforeReject))
        #expect(t.afterReceiving(current: mine, now: lastMinute + 10 * second) == nil, "once per handshake")
        t.handshakeCompleted(now: lastMinute + 11 * second)
        #expect(t.afterReceiving(current: mine, now: lastMinute + 12 * second) == .initiateHandshake(.rekeyBeforeReject))
        var u = timers()
        #expect(u.afterReceiving(current: try keypair(initiator: false, at: 0), now: lastMinute) == nil)
    }

    @Test func persistentKeepaliveFiresEveryInterval() {
        var t = timers()
        #expect(t.setPersistentKeepalive(25, now: 0) == .sendKeepalive(.persistent), "turning it on sends one")
        t.packetSent(.keepalive, now: 0)
        var fired: [UInt64] = []
        var now: UInt64 = 0
        while fired.count < 4, let deadline = t.nextDeadline {
            now = deadline
            #expect(t.dueActions(now: now) == [.sendKeepalive(.persistent)])
            fired.append(now / second)
            t.packetSent(.keepalive, now: now)
        }
        #expect(fired == [25, 50, 75, 100])
        // Traffic either way pushes it back: it fills silence only.
        t.packetReceived(.keepalive, now: now + 20 * second)
        #expect(t.nextDeadline == now + 45 * second)
        #expect(t.setPersistentKeepalive(30, now: now + 21 * second) == nil, "already on: no extra packet")
        #expect(t.setPersistentKeepalive(0, now: now + 22 * second) == nil)
        #expect(t.nextDeadline == nil)
    }

    @Test func persistentAndPassiveKeepalivesDueTogetherSendOne() {
        var t = timers(persistentKeepalive: 10)
        t.packetReceived(.data, now: 0)
        #expect(t.dueActions(now: 10 * second) == [.sendKeepalive(.passive)])
    }

    @Test func handshakeRetriesEveryRekeyTimeoutUntilRekeyAttemptTimeThenGivesUp() {
        var t = timers()
        #expect(t.needSession(now: 0) == .initiateHandshake(.noSession))
        t.packetSent(.handshakeInitiation, now: 0)
        var initiations: [UInt64] = [0]
        var attempts: [Int] = []
        var gaveUpAt: UInt64?
        while gaveUpAt == nil, let deadline = t.nextDeadline {
            for action in t.dueActions(now: deadline) {
                switch action {
                case .initiateHandshake(.retransmit(let attempt)):
                    attempts.append(attempt)
                    initiations.append(deadline)
                    t.packetSent(.handshakeInitiation, now: deadline)
                case .giveUp:
                    gaveUpAt = deadline
                default:
                    Issue.record("unexpected \(action)")
                }
            }
        }
        let period = WireGuardTiming.rekeyTimeout + Self.jitter
        // The first initiation, then 19 retries (attempts 2...20), each REKEY_TIMEOUT + jitter apart:
        // retrying covers REKEY_ATTEMPT_TIME (90 s), and the 20th timeout gives up.
        #expect(initiations.count == WireGuardTiming.maxTimerHandshakes + 2)
        #expect(attempts == Array(2...20))
        #expect(initiations == (0..<20).map { UInt64($0) * period })
        #expect(gaveUpAt == 20 * period)
        #expect(initiations.last! >= WireGuardTiming.rekeyAttemptTime)
        // What a partial exchange left is zeroed 3 x REJECT_AFTER_TIME later, and nothing else is due.
        #expect(t.nextDeadline == 20 * period + 3 * WireGuardTiming.rejectAfterTime)
        #expect(t.dueActions(now: t.nextDeadline!) == [.expireSessions])
        #expect(t.nextDeadline == nil)
        // New traffic starts over.
        #expect(t.needSession(now: 2000 * second) == .initiateHandshake(.noSession))
        #expect(t.handshakeAttempts == 0)
    }

    @Test func aCompletedHandshakeStopsTheRetries() {
        var t = timers()
        t.packetSent(.handshakeInitiation, now: 0)
        _ = t.dueActions(now: 6 * second)
        t.packetSent(.handshakeInitiation, now: 6 * second)
        #expect(t.handshakeAttempts == 1)
        t.packetReceived(.handshakeResponse, now: 7 * second)
        t.sessionDerived(now: 7 * second)
        t.handshakeCompleted(now: 7 * second)
        #expect(t.handshakeAttempts == 0)
        // Only the key-material timer is left.
        #expect(t.nextDeadline == 7 * second + 3 * WireGuardTiming.rejectAfterTime)
    }

    @Test func keysAreZeroedThreeRejectAfterTimesAfterTheLastSession() {
        var t = timers()
        t.sessionDerived(now: 0)
        t.sessionDerived(now: 100 * second)
        let due = 100 * second + 540 * second
        #expect(t.dueActions(now: due - 1).isEmpty)
        #expect(t.dueActions(now: due) == [.expireSessions])
    }

    @Test func aLateCallFiresEachTimerOnce() {
        var t = timers(persistentKeepalive: 5)
        t.packetSent(.data, now: 0)
        t.packetSent(.handshakeInitiation, now: 0)
        let actions = t.dueActions(now: 3600 * second)
        // Retransmission and no-reply are due together: one initiation covers both.
        #expect(actions == [.initiateHandshake(.retransmit(attempt: 2)), .sendKeepalive(.persistent)])
    }

    @Test func theDefaultJitterStaysBelowItsBound() {
        for _ in 0..<50 {
            var t = PeerTimers(random: SystemRandom())
            t.packetSent(.handshakeInitiation, now: 0)
            let delay = t.nextDeadline! - WireGuardTiming.rekeyTimeout
            #expect(delay < WireGuardTiming.rekeyTimeoutJitterMax)
        }
    }
}

@Suite struct PeerStatisticsTests {
    @Test func countersAndDrops() {
        var stats = PeerStatistics(endpoint: SocketAddressFixture.endpoint)
        stats.recordSent(payloadBytes: 1400)
        stats.recordSent(payloadBytes: 0)
        stats.recordReceived(payloadBytes: 60)
        stats.recordHandshake(at: 1_700_000_000_000_000_000)
        stats.handshakesInitiated += 1
        stats.recordDrop(.replay)
        stats.recordDrop(.replay)
        stats.recordDrop(.sourceNotAllowed)
        #expect(stats.packetsSent == 2 && stats.bytesSent == 1400)
        #expect(stats.packetsReceived == 1 && stats.bytesReceived == 60)
        #expect(stats.handshakesCompleted == 1 && stats.lastHandshakeUnixNanoseconds == 1_700_000_000_000_000_000)
        #expect(stats.drops[.replay] == 2 && stats.drops.sourceNotAllowed == 1 && stats.drops.total == 3)
        #expect(stats.endpoint?.description == "192.0.2.1:51820")
        stats.bytesSent = .max
        stats.recordSent(payloadBytes: 2)
        #expect(stats.bytesSent == 1, "wraps, never traps")
    }
}

import NetAddress

enum SocketAddressFixture {
    static let endpoint = SocketAddress("192.0.2.1:51820")!
}
