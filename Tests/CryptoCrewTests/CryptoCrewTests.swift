import Synchronization
import Testing
import WireGuardCrypto
@testable import CryptoCrew

/// A key's ciphers, one context per slot as a keypair keeps them; counts the jobs each slot ran.
final class CountingKey: CipherSlots, @unchecked Sendable {
    final class Slot {
        let cipher = Mutex<ChaChaPoly?>(nil)
        let runs = Atomic<Int>(0)
    }

    let key: [UInt8]
    let main: ChaChaPoly
    private let slots: [Slot]
    /// Which ciphers OpenSSL "could not make": none, the per-slot ones, or all.
    enum Failing { case none, slots, all }
    let failing: Failing

    init(key: [UInt8], slots: Int, failing: Failing = .none) throws {
        self.key = key
        main = try ChaChaPoly(key: key)
        self.slots = (0..<slots).map { _ in Slot() }
        self.failing = failing
    }

    func cipher(sealing: Bool, slot: Int?) -> ChaChaPoly? {
        guard failing != .all else { return nil }
        guard let slot else { return main }
        guard failing != .slots else { return nil }
        slots[slot].runs.add(1, ordering: .relaxed)
        return slots[slot].cipher.withLock { cipher in
            if cipher == nil { cipher = try? ChaChaPoly(key: key) }
            return cipher
        }
    }

    var runs: Int { slots.reduce(0) { $0 + $1.runs.load(ordering: .relaxed) } }
}

/// A crew of `count` whose members but the first sleep on threads of their own until a post wakes them.
final class Helpers {
    let crew: CryptoCrew
    private let threads: HelperThreads

    init(count: Int) throws {
        crew = CryptoCrew(threads: count)
        threads = try HelperThreads(for: crew)
    }

    func stop() { threads.stop() }
}

/// Packet buffers at fixed addresses (a board holds pointers into them), each with room for the tag.
final class Buffers {
    let buffers: [UnsafeMutableRawBufferPointer]

    init(_ contents: [[UInt8]]) {
        buffers = contents.map { bytes in
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count + 16, alignment: 16)
            buffer.initializeMemory(as: UInt8.self, repeating: 0)
            buffer.copyBytes(from: bytes)
            return buffer
        }
    }

    deinit { buffers.forEach { $0.deallocate() } }

    var count: Int { buffers.count }

    /// Each buffer sealed in place by `cipher` alone (buffer `i`: its first `counts[i]` bytes, counter `i`),
    /// as one thread without a crew seals them.
    func seal(with cipher: ChaChaPoly, counts: [Int]) throws {
        for index in buffers.indices {
            _ = try cipher.seal(inPlace: buffers[index], plaintextCount: counts[index], counter: UInt64(index))
        }
    }

    /// Every buffer on `member`'s board (buffer `i` with `counts[i]` bytes and counter `i`), run; the
    /// results, and the board empty again.
    func run(on member: CrewMember, counts: [Int], key: any CipherSlots, sealing: Bool) -> [Int] {
        for index in buffers.indices {
            member.board.append(buffers[index].baseAddress!, count: counts[index], counter: UInt64(index), ciphers: key, sealing: sealing)
        }
        member.runBoard()
        defer { member.board.clear() }
        return buffers.indices.map { member.board.jobs[$0].result }
    }
    subscript(index: Int) -> UnsafeMutableRawBufferPointer { buffers[index] }
    func bytes(_ index: Int, _ count: Int) -> [UInt8] { Array(buffers[index].prefix(count)) }
}

@Suite struct CryptoCrewTests {
    static func packet(_ size: Int, seed: Int) -> [UInt8] {
        (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed) }
    }

    /// Boards of many sizes (one packet up to a full board), sealed by the owner and its helpers: every
    /// job runs once, and the bytes are exactly what one cipher sealing alone makes; then opened the same
    /// way, the plaintext comes back.
    @Test func sharedSealsAndOpensAreByteForByteThoseOfOneThread() throws {
        let helpers = try Helpers(count: 3)
        defer { helpers.stop() }
        let owner = helpers.crew.members[0]
        let key = try CountingKey(key: Array(repeating: 7, count: 32), slots: 3)
        let reference = try ChaChaPoly(key: key.key)
        var jobsRun = 0
        for (round, count) in [1, 2, 9, 45, 64, 300, CryptoBoard.capacity].enumerated() {
            let sizes = (0..<count).map { [64, 1420, 1424, 512, 8192][($0 + round) % 5] }
            let plain = sizes.enumerated().map { index, size in Self.packet(size, seed: index + round) }
            let buffers = Buffers(plain), expected = Buffers(plain)
            try expected.seal(with: reference, counts: sizes)
            let sealedSizes = sizes.map { $0 + 16 }
            #expect(buffers.run(on: owner, counts: sizes, key: key, sealing: true) == sealedSizes)
            for index in 0..<count { #expect(buffers.bytes(index, sizes[index] + 16) == expected.bytes(index, sizes[index] + 16)) }

            #expect(buffers.run(on: owner, counts: sealedSizes, key: key, sealing: false) == sizes)
            for index in 0..<count { #expect(buffers.bytes(index, sizes[index]) == plain[index]) }
            jobsRun += 2 * count
        }
        #expect(key.runs == jobsRun)
    }

    /// A message whose tag does not verify comes back failed and wiped, whichever thread opened it; the
    /// others of the board open as usual.
    @Test func aForgedMessageFailsAloneAndLeavesNoBytes() throws {
        let helpers = try Helpers(count: 2)
        defer { helpers.stop() }
        let owner = helpers.crew.members[0]
        let key = try CountingKey(key: Array(repeating: 9, count: 32), slots: 2)
        let sealer = try ChaChaPoly(key: key.key)
        let buffers = Buffers((0..<40).map { Self.packet(1420, seed: $0) })
        try buffers.seal(with: sealer, counts: Array(repeating: 1420, count: buffers.count))
        buffers[17][100] ^= 1
        let results = buffers.run(on: owner, counts: Array(repeating: 1436, count: buffers.count), key: key, sealing: false)
        for index in 0..<buffers.count { #expect(results[index] == (index == 17 ? -1 : 1420)) }
        #expect(buffers.bytes(17, 1420).allSatisfy { $0 == 0 })
        #expect(buffers.bytes(16, 1420) == Self.packet(1420, seed: 16))
    }

    /// Without a cipher context (OpenSSL could not make one) a seal fails and leaves zeros: never the
    /// plaintext, which would otherwise be sent as it is.
    @Test func aSealWithoutACipherLeavesZerosNotPlaintext() throws {
        let crew = CryptoCrew(threads: 1)
        let key = try CountingKey(key: Array(repeating: 1, count: 32), slots: 1, failing: .all)
        let buffers = Buffers([Self.packet(100, seed: 3)])
        #expect(buffers.run(on: crew.members[0], counts: [100], key: key, sealing: true) == [-1])
        #expect(buffers.bytes(0, 116).allSatisfy { $0 == 0 })
    }

    /// A thread without a cipher context of its own leaves its jobs untouched, and the owner runs them
    /// again with the main cipher: the bytes are those one cipher makes.
    @Test func jobsWithoutAThreadCipherRunAgainWithTheMainOne() throws {
        let helpers = try Helpers(count: 2)
        defer { helpers.stop() }
        let owner = helpers.crew.members[0]
        let key = try CountingKey(key: Array(repeating: 5, count: 32), slots: 2, failing: .slots)
        let reference = try ChaChaPoly(key: key.key)
        let plain = (0..<40).map { Self.packet(1420, seed: $0) }
        let buffers = Buffers(plain), expected = Buffers(plain)
        try expected.seal(with: reference, counts: Array(repeating: 1420, count: buffers.count))
        #expect(buffers.run(on: owner, counts: Array(repeating: 1420, count: buffers.count), key: key, sealing: true)
                == Array(repeating: 1436, count: buffers.count))
        for index in 0..<buffers.count { #expect(buffers.bytes(index, 1436) == expected.bytes(index, 1436)) }
    }

    /// A helper stops at its budget even while work is left (so that its thread serves its own devices),
    /// says so, and finishes the rest when called again.
    @Test func aHelperStopsAtItsBudgetWithWorkLeft() throws {
        let crew = CryptoCrew(threads: 2)
        let (owner, helper) = (crew.members[0], crew.members[1])
        let key = try CountingKey(key: Array(repeating: 3, count: 32), slots: 2)
        let buffers = Buffers((0..<64).map { Self.packet(512, seed: $0) })
        for index in 0..<buffers.count {
            owner.board.append(buffers[index].baseAddress!, count: 512, counter: UInt64(index), ciphers: key, sealing: true)
        }
        let chunks = buffers.count / CryptoBoard.chunkJobs
        owner.board.state.store(UInt64(chunks) << 32, ordering: .releasing)  // posted, as runBoard does
        // A budget of 1 ns: one chunk, then back, with the other chunks still there.
        #expect(helper.help(linger: 0, budget: 1))
        #expect(owner.board.finished.load(ordering: .acquiring) == 1)
        #expect(crew.hasOpenWork)
        // Resumed with time enough: the rest, then nothing left to linger for.
        #expect(!helper.help(linger: 0, budget: 1_000_000_000))
        #expect(owner.board.finished.load(ordering: .acquiring) == chunks)
        #expect(!crew.hasOpenWork)
        for index in 0..<buffers.count { #expect(owner.board.jobs[index].result == 528) }
        owner.board.clear()
    }

    /// A chunk is claimed once: claims after the last one find nothing.
    @Test func chunksAreClaimedOnceEach() {
        let board = CryptoBoard()
        board.state.store(UInt64(3) << 32, ordering: .relaxed)
        #expect(board.claim()?.chunk == 0)
        #expect(board.claim()?.chunk == 1)
        #expect(board.claim()?.chunk == 2)
        #expect(board.claim() == nil)
        #expect(board.claim() == nil)
    }
}
