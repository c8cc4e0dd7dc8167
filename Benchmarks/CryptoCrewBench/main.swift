// What sharing a batch's AEAD work buys on this machine (run by Benchmarks/crypto-crew.sh, not by CI):
// boards of full-sized WireGuard packets (1,420 bytes, 45 to a board: one 64 KB TSO super-packet cut
// into segments) sealed, then opened, by one thread alone and by a crew of 2..N threads, each helper
// asleep until a board is posted, as an idle data-plane thread is. Bounded: at most SECONDS per row and
// 200,000 boards.
#if canImport(Glibc)
import Glibc
#endif
import BackgroundThread
import CryptoCrew
import Dispatch
import Synchronization
import WireGuardCrypto

final class Key: CipherSlots, @unchecked Sendable {
    let contexts: [(sealing: ChaChaPoly, opening: ChaChaPoly)]
    init(slots: Int) throws {
        let key = [UInt8](repeating: 0x42, count: 32)
        contexts = try (0..<slots).map { _ in (try ChaChaPoly(key: key), try ChaChaPoly(key: key)) }
    }
    func cipher(sealing: Bool, slot: Int?) -> ChaChaPoly? {
        let pair = contexts[slot ?? 0]
        return sealing ? pair.sealing : pair.opening
    }
}

func now() -> Double { Double(monotonicNanoseconds()) / 1e9 }

/// Boards per second with a crew of `threads` (the caller and threads - 1 sleeping helpers).
func measure(threads: Int, sealing: Bool, seconds: Double, packets: Int, size: Int) throws -> (boards: Int, elapsed: Double) {
    let crew = CryptoCrew(threads: threads)
    let helpers = try HelperThreads(for: crew)
    defer { helpers.stop() }
    let key = try Key(slots: threads)
    let stride = (size + ChaChaPoly.tagCount + 63) & ~63
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: stride * packets, alignment: 64)
    defer { buffer.deallocate() }
    buffer.initializeMemory(as: UInt8.self, repeating: 0x5a)
    if !sealing {  // sealed once, so that every open verifies; opened again and again (the counter is the same)
        for index in 0..<packets {
            _ = try key.contexts[0].sealing.seal(inPlace: UnsafeMutableRawBufferPointer(rebasing: buffer[(index * stride)..<((index + 1) * stride)]),
                                                 plaintextCount: size, counter: UInt64(index))
        }
    }
    let owner = crew.members[0]
    let start = now()
    var boards = 0
    var copy = [UInt8](repeating: 0, count: stride * packets)
    if !sealing { copy.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(buffer)) } }
    while boards < 200_000 && now() - start < seconds {
        for index in 0..<packets {
            owner.board.append(buffer.baseAddress! + index * stride, count: sealing ? size : size + ChaChaPoly.tagCount,
                               counter: UInt64(index), ciphers: key, sealing: sealing)
        }
        owner.runBoard()
        if !sealing {
            for index in 0..<packets where owner.board.jobs[index].result != size { fatalError("an open failed") }
            // Back to the sealed bytes for the next round (opening decrypted them in place).
            copy.withUnsafeBytes { UnsafeMutableRawBufferPointer(buffer).copyMemory(from: $0) }
        }
        owner.board.clear()
        boards += 1
    }
    return (boards, now() - start)
}

func fixed(_ value: Double) -> String {
    let hundredths = Int((value * 100).rounded())
    let fraction = hundredths % 100
    return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
}

func pad(_ value: some CustomStringConvertible, _ width: Int) -> String {
    let text = value.description
    return String(repeating: " ", count: max(0, width - text.count)) + text
}

let seconds = CommandLine.arguments.count > 1 ? Double(CommandLine.arguments[1]) ?? 3 : 3
let cpus = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
let packets = 45, size = 1420
print("# \(cpus) CPUs; boards of \(packets) x \(size)-byte packets; \(seconds) s per row")
print("op    threads   boards/s   Gbit/s  speedup")
for sealing in [true, false] {
    var single = 0.0
    for threads in 1...max(1, min(cpus, 8)) {
        let (boards, elapsed) = try measure(threads: threads, sealing: sealing, seconds: seconds, packets: packets, size: size)
        let rate = Double(boards) / elapsed
        if threads == 1 { single = rate }
        let gbits = rate * Double(packets * size * 8) / 1e9
        print("\(sealing ? "seal" : "open")  \(pad(threads, 7)) \(pad(Int(rate), 10)) \(pad(fixed(gbits), 8)) \(pad(fixed(rate / single), 7))x")
    }
}
