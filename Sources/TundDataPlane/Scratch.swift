import CryptoCrew
/// The buffers of one data-plane thread, allocated once and shared by every queue it serves: a queue
/// costs descriptors and counters, not buffers. Pages are touched only when a burst needs them.
final class Scratch {
    /// Packets handled per wakeup and per descriptor, so one flooded device cannot starve the others.
    static let batchLimit = 64
    /// Large enough for any frame: 65535 bytes of MTU plus Ethernet and VLAN headers, and a virtio header.
    static let slotSize = 65536 + 64

    let slots: UnsafeMutableRawBufferPointer
    /// The length of what each slot holds after a read (virtio header included).
    let lengths: UnsafeMutablePointer<Int>
    let messages: MessageBatch
    let packets: PacketList
    /// Where GRO puts a super-packet together.
    let merged = MergeSpace()
    /// The thread's place in the data plane's crypto crew (nil: its batches seal and open alone).
    let member: CrewMember?

    init(member: CrewMember? = nil) {
        self.member = member
        slots = .allocate(byteCount: Self.slotSize * Self.batchLimit, alignment: 64)
        lengths = .allocate(capacity: Self.batchLimit)
        lengths.initialize(repeating: 0, count: Self.batchLimit)
        messages = MessageBatch(slots: slots, slotSize: Self.slotSize, count: Self.batchLimit)
        packets = PacketList(capacity: Self.batchLimit * SendQueue.maximumSegments)
    }

    func slot(_ index: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: slots[(index * Self.slotSize)..<((index + 1) * Self.slotSize)])
    }

    deinit {
        slots.deallocate()
        lengths.deallocate()
        messages.deallocate()
        packets.deallocate()
    }
}

/// The packets one read brought, as a mode sees them: each slot holds `prefix` bytes of virtio header
/// (0 without offloads), then the packet.
struct ReadBatch {
    let scratch: Scratch
    let count: Int
    let prefix: Int

    /// The packet alone.
    func packet(_ index: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: scratch.slot(index)[prefix..<scratch.lengths[index]])
    }

    /// The slot as read: virtio header, then packet.
    func frame(_ index: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: scratch.slot(index)[0..<scratch.lengths[index]])
    }
}
