#if canImport(Glibc)
import Glibc
#endif
import CBatchIO

/// The `mmsghdr`/`iovec`/address arrays for `sendmmsg` and `recvmmsg` over a thread's buffer slots,
/// built once.
struct MessageBatch {
    let slots: UnsafeMutableRawBufferPointer
    let slotSize: Int
    let count: Int
    let headers: UnsafeMutablePointer<tund_mmsghdr>
    let vectors: UnsafeMutablePointer<iovec>
    /// Where `recvmmsg` writes each datagram's source.
    let addresses: UnsafeMutablePointer<sockaddr_storage>
    /// Room for each message's UDP_GRO control message (`CMSG_SPACE(sizeof(int))`).
    let controls: UnsafeMutableRawPointer
    static let controlSpace = 24

    init(slots: UnsafeMutableRawBufferPointer, slotSize: Int, count: Int) {
        self.slots = slots
        self.slotSize = slotSize
        self.count = count
        headers = .allocate(capacity: count)
        vectors = .allocate(capacity: count)
        addresses = .allocate(capacity: count)
        controls = .allocate(byteCount: count * Self.controlSpace, alignment: 8)
        headers.initialize(repeating: tund_mmsghdr(), count: count)
        addresses.initialize(repeating: sockaddr_storage(), count: count)
        for index in 0..<count {
            vectors[index] = iovec(iov_base: slots.baseAddress! + index * slotSize, iov_len: slotSize)
        }
    }

    func slot(_ index: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: slots[(index * slotSize)..<((index + 1) * slotSize)])
    }

    /// Points every header at its slot (after `reserving` bytes kept free for a virtio header) and at its
    /// own address buffer.
    func prepareReceive(reserving: Int = 0, control: Bool = false) {
        for index in 0..<count {
            vectors[index].iov_base = slots.baseAddress! + index * slotSize + reserving
            vectors[index].iov_len = slotSize - reserving
            headers[index].msg_hdr = msghdr(msg_name: UnsafeMutableRawPointer(addresses + index),
                                            msg_namelen: socklen_t(MemoryLayout<sockaddr_storage>.size),
                                            msg_iov: vectors + index, msg_iovlen: 1,
                                            msg_control: control ? controls + index * Self.controlSpace : nil,
                                            msg_controllen: control ? Self.controlSpace : 0, msg_flags: 0)
            headers[index].msg_len = 0
        }
    }

    /// The segment size of a message the kernel merged (a UDP_GRO control message), or nil.
    func groSegmentSize(_ index: Int) -> Int? {
        guard headers[index].msg_hdr.msg_controllen >= 20 else { return nil }
        let control = controls + index * Self.controlSpace
        guard control.load(fromByteOffset: 8, as: Int32.self) == 17, control.load(fromByteOffset: 12, as: Int32.self) == 104 else { return nil }
        let size = Int(control.load(fromByteOffset: 16, as: Int32.self))
        return size > 0 ? size : nil
    }

    func deallocate() {
        headers.deallocate()
        vectors.deallocate()
        addresses.deallocate()
        controls.deallocate()
    }
}
