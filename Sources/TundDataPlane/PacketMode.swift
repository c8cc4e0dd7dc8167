#if canImport(Glibc)
import Glibc
#endif

/// A worker mode: what becomes of the packets one read brings. A mode sees batches and the device, never
/// threads or descriptors, so each is one small file and runs the same against a fake device in tests.
protocol PacketMode: AnyObject {
    /// Handles `batch`, already counted and captured.
    func handle(_ batch: ReadBatch, _ device: any PacketDevice, _ tally: inout BatchTally) -> ModeVerdict
}

enum ModeVerdict: Equatable {
    case carryOn
    /// Stop the worker, saying why (it would otherwise spin).
    case fail(String)
}

extension PacketDevice {
    /// Writes one packet (with its virtio header when `prefix` is not 0) and counts it.
    @inline(__always)
    func writeCounted(_ frame: UnsafeRawBufferPointer, prefix: Int, _ tally: inout BatchTally) {
        Self.count(write(frame), bytes: frame.count - prefix, &tally)
    }

    /// Writes one packet gathered from `pieces` (its virtio header first) and counts its `payloadBytes`.
    @inline(__always)
    func writeCounted(gathering pieces: UnsafeBufferPointer<iovec>, payloadBytes: Int, _ tally: inout BatchTally) {
        Self.count(write(gathering: pieces), bytes: payloadBytes, &tally)
    }

    @inline(__always)
    private static func count(_ written: Bool, bytes: Int, _ tally: inout BatchTally) {
        if written {
            tally[.packetsWritten] &+= 1
            tally[.bytesWritten] &+= UInt64(bytes)
        } else {
            tally[.writeErrors] &+= 1
        }
    }
}
