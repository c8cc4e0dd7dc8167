import Testing
import WireGuardNoise
@testable import WireGuardPeers

private let second = WireGuardTiming.nanosecondsPerSecond

@Suite struct KeypairsTests {
    let pair: SessionPair
    init() throws { pair = try SessionPair() }

    func initiatorKeypair(_ index: UInt32, at time: UInt64 = 0) throws -> Keypair {
        Keypair(session: try pair.handshake(initiatorIndex: index, responderIndex: index + 1000).initiator, createdAt: time)
    }

    func responderKeypair(_ index: UInt32, at time: UInt64 = 0) throws -> Keypair {
        Keypair(session: try pair.handshake(initiatorIndex: index + 1000, responderIndex: index).responder, createdAt: time)
    }

    @Test func theInitiatorsKeypairSendsAtOnce() throws {
        var keypairs = Keypairs()
        let a = try initiatorKeypair(1)
        #expect(keypairs.install(a).isEmpty)
        #expect(keypairs.current === a)
        #expect(keypairs.sendingKeypair(now: 0) === a)
    }

    @Test func theRespondersKeypairWaitsForTheFirstDataPacket() throws {
        var keypairs = Keypairs()
        let b = try responderKeypair(2)
        #expect(keypairs.install(b).isEmpty)
        #expect(keypairs.next === b)
        #expect(keypairs.current == nil)
        #expect(keypairs.sendingKeypair(now: 0) == nil, "unconfirmed keys never send")
        let first = keypairs.receivedData(on: b)
        #expect(first.confirmed && first.retired == nil)
        #expect(keypairs.current === b && keypairs.next == nil)
        #expect(keypairs.sendingKeypair(now: 0) === b)
        #expect(!keypairs.receivedData(on: b).confirmed, "only the first packet confirms")
    }

    @Test func slotsRotateAsTheKernelsDo() throws {
        var keypairs = Keypairs()
        let a = try initiatorKeypair(1), b = try responderKeypair(2), c = try initiatorKeypair(3)
        _ = keypairs.install(a)
        // A responder's session leaves current alone until confirmed; previous goes.
        #expect(keypairs.install(b).isEmpty)
        #expect(keypairs.current === a && keypairs.next === b)
        // Data on the old current confirms nothing.
        #expect(!keypairs.receivedData(on: a).confirmed)
        _ = keypairs.receivedData(on: b)
        #expect(keypairs.current === b && keypairs.previous === a)
        // An initiator's session: current -> previous, the old previous is retired.
        let retired = keypairs.install(c)
        #expect(retired.count == 1 && retired[0] === a)
        #expect(keypairs.current === c && keypairs.previous === b && keypairs.next == nil)
        // Every slot is found by its local index; retired ones are not.
        #expect(keypairs.keypair(localIndex: 3) === c)
        #expect(keypairs.keypair(localIndex: 2) === b)
        #expect(keypairs.keypair(localIndex: 1) == nil)
    }

    @Test func anInitiatorSessionOverAPendingNextKeepsTheNextAsPrevious() throws {
        var keypairs = Keypairs()
        let a = try initiatorKeypair(1), b = try initiatorKeypair(2), n = try responderKeypair(3), c = try initiatorKeypair(4)
        _ = keypairs.install(a)
        _ = keypairs.install(b) // current b, previous a
        _ = keypairs.install(n) // previous a retired, next n
        #expect(keypairs.previous == nil)
        let retired = keypairs.install(c)
        #expect(retired.count == 1 && retired[0] === b)
        #expect(keypairs.current === c && keypairs.previous === n && keypairs.next == nil)
        // A second responder session replaces the pending next.
        let m = try responderKeypair(5), o = try responderKeypair(6)
        _ = keypairs.install(m)
        let replaced = keypairs.install(o)
        #expect(replaced.count == 1 && replaced[0] === m)
        #expect(keypairs.removeAll().count == 2) // c and o
        #expect(keypairs.current == nil && keypairs.next == nil && keypairs.previous == nil)
    }

    @Test func sendingStopsAtRejectAfterTime() throws {
        let a = try initiatorKeypair(1, at: 10 * second)
        #expect(a.takeSendCounter(now: 10 * second) == 0)
        #expect(a.takeSendCounter(now: 20 * second) == 1)
        #expect(a.takeSendCounter(now: 190 * second - 1) == 2)
        #expect(a.takeSendCounter(now: 190 * second) == nil)
        #expect(!a.isSendingValid)
        #expect(a.takeSendCounter(now: 20 * second) == nil, "retired for good, whatever the clock says")
        var keypairs = Keypairs()
        _ = keypairs.install(try initiatorKeypair(2, at: 0))
        #expect(keypairs.sendingKeypair(now: 180 * second) == nil)
    }

    @Test func sendingStopsAtRejectAfterMessages() throws {
        let a = try initiatorKeypair(1)
        a.sendCounter = WireGuardTiming.rejectAfterMessages - 1
        #expect(a.takeSendCounter(now: 0) == WireGuardTiming.rejectAfterMessages - 1)
        #expect(a.takeSendCounter(now: 0) == nil)
        #expect(!a.canSend(now: 0))
    }

    @Test func receivingChecksAgeAndReplay() throws {
        let a = try responderKeypair(1)
        #expect(a.canReceive(now: 179 * second))
        #expect(a.wouldAccept(counter: 5))
        #expect(a.acceptReceived(counter: 5))
        #expect(!a.wouldAccept(counter: 5))
        #expect(!a.acceptReceived(counter: 5), "a replay")
        #expect(a.acceptReceived(counter: 4), "late but inside the window")
        #expect(!a.canReceive(now: 180 * second))
        #expect(!a.canReceive(now: 0), "retired for good")
    }

    /// Both sides of a real handshake, with index tables: the receiver index on each packet finds the peer,
    /// then its keypair; the responder's confirmation follows the initiator's first packet.
    @Test func twoSidesWithIndexTables() throws {
        var initiatorIndices = IndexTable<String>(), responderIndices = IndexTable<String>()
        let initiatorIndex = try initiatorIndices.insert(.handshake("responder"), random: SequenceRandom([0xaaaa]))
        let responderIndex = try responderIndices.insert(.keypair("initiator"), random: SequenceRandom([0xbbbb]))
        let (toResponder, toInitiator) = try pair.handshake(initiatorIndex: initiatorIndex, responderIndex: responderIndex)
        var initiatorSide = Keypairs(), responderSide = Keypairs()
        _ = responderSide.install(Keypair(session: toInitiator, createdAt: 0))
        _ = initiatorSide.install(Keypair(session: toResponder, createdAt: 0))
        let repointed = initiatorIndices.replace(initiatorIndex, with: .keypair("responder"))
        #expect(repointed)

        // The initiator sends first, to the responder's index.
        let sender = try #require(initiatorSide.sendingKeypair(now: 1))
        #expect(sender.remoteIndex == responderIndex)
        #expect(responderIndices[sender.remoteIndex] == .keypair("initiator"))
        let receiver = try #require(responderSide.keypair(localIndex: sender.remoteIndex))
        #expect(receiver.acceptReceived(counter: try #require(sender.takeSendCounter(now: 1))))
        #expect(responderSide.receivedData(on: receiver).confirmed)
        // Now the responder can answer, to the initiator's index.
        let reply = try #require(responderSide.sendingKeypair(now: 2))
        #expect(initiatorIndices[reply.remoteIndex] == .keypair("responder"))
        #expect(initiatorSide.keypair(localIndex: reply.remoteIndex) === sender)
    }
}

@Suite struct IndexTableTests {
    @Test func indicesAreDrawnAndCollisionsSkipped() throws {
        var table = IndexTable<Int>()
        let random = SequenceRandom([7, 7, 7, 9])
        #expect(try table.insert(.handshake(1), random: random) == 7)
        #expect(try table.insert(.keypair(2), random: random) == 9, "two draws of 7 were in use")
        #expect(table[7] == .handshake(1))
        #expect(table[9]?.peer == 2)
        #expect(table[8] == nil)
        #expect(table.count == 2)
    }

    @Test func aBrokenRandomSourceIsAnErrorNotAHang() throws {
        var table = IndexTable<Int>()
        let constant = SequenceRandom([42])
        _ = try table.insert(.handshake(1), random: constant)
        #expect(throws: IndexTableError.noFreeIndex(attempts: IndexTable<Int>.maximumAttempts)) {
            try table.insert(.handshake(2), random: constant)
        }
    }

    @Test func replaceRemoveAndRemoveAllOfAPeer() throws {
        var table = IndexTable<Int>()
        let random = SequenceRandom([1, 2, 3, 4])
        let handshake = try table.insert(.handshake(1), random: random)
        _ = try table.insert(.keypair(1), random: random)
        let other = try table.insert(.keypair(2), random: random)
        let repointed = table.replace(handshake, with: .keypair(1))
        #expect(repointed)
        #expect(table[handshake] == .keypair(1))
        let unknown = table.replace(99, with: .keypair(1))
        #expect(!unknown, "only live indices are re-pointed")
        #expect(table[99] == nil)
        table.removeAll(of: 1)
        #expect(table.count == 1)
        #expect(table.remove(other) == .keypair(2))
        #expect(table.remove(other) == nil)
        #expect(table.count == 0)
    }

    @Test func theSystemSourceGivesDistinctIndices() throws {
        var table = IndexTable<Int>()
        var seen = Set<UInt32>()
        for peer in 0..<1000 { seen.insert(try table.insert(.keypair(peer), random: SystemRandom())) }
        #expect(seen.count == 1000)
    }
}
