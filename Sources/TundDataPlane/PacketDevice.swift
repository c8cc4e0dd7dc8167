#if canImport(Glibc)
import Glibc
#endif

/// Where a worker reads packets and writes them: a device queue's descriptor, or, in tests, memory.
/// Modes see only this, so each mode runs the same against a fake device without a kernel.
protocol PacketDevice: AnyObject {
    /// One packet into `buffer`: its length, 0 when none is waiting, -1 on an error that is not EAGAIN
    /// (the device is gone).
    func read(into buffer: UnsafeMutableRawBufferPointer) -> Int
    /// One packet (its virtio header first when the device has one); false when the device refused it.
    func write(_ packet: UnsafeRawBufferPointer) -> Bool
    /// One packet from `pieces` (its virtio header first), in one write.
    func write(gathering pieces: UnsafeBufferPointer<iovec>) -> Bool
}

/// A device queue's descriptor, non-blocking.
final class QueueDescriptor: PacketDevice {
    let descriptor: Int32

    init(_ descriptor: Int32) { self.descriptor = descriptor }

    func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        while true {
            let count = Glibc.read(descriptor, buffer.baseAddress, buffer.count)
            if count >= 0 { return count }
            if errno == EINTR { continue }
            return errno == EAGAIN ? 0 : -1
        }
    }

    func write(_ packet: UnsafeRawBufferPointer) -> Bool {
        Glibc.write(descriptor, packet.baseAddress, packet.count) == packet.count
    }

    func write(gathering pieces: UnsafeBufferPointer<iovec>) -> Bool {
        let written = writev(descriptor, pieces.baseAddress, Int32(pieces.count))
        return written == pieces.reduce(0) { $0 + $1.iov_len }  // -1 never equals a sum
    }
}
