import Glibc
import CBatchIO
import PacketCounters

/// Counters of one queue. Its thread is the only writer: it adds up a batch in a `CounterTable` on the
/// stack and publishes it under a sequence lock, so the hot path takes no lock and no atomic
/// read-modify-write, and a reader sees whole batches (the protocol counts of every packet in
/// packets_read). One slot per `Counter`, then the time of the last packet, then the sequence.
public final class QueueCounters: @unchecked Sendable {
    private let slots: UnsafeMutablePointer<UInt64>
    private static let lastPacketSlot = Counter.capacity
    private static let sequenceSlot = Counter.capacity + 1

    init() {
        precondition(Counter.allCases.count <= Counter.capacity, "CounterTable holds \(Counter.capacity) counters")
        slots = .allocate(capacity: Counter.capacity + 2)
        slots.initialize(repeating: 0, count: Counter.capacity + 2)
    }

    deinit { slots.deallocate() }

    /// Adds a batch's tallies. Called only by the queue's own thread.
    func publish(_ batch: inout BatchTally, at nanoseconds: UInt64) {
        tund_counters_write_begin(slots + Self.sequenceSlot)
        for index in 0..<Counter.count where batch.counts[raw: index] != 0 {
            tund_counter_add(slots + index, batch.counts[raw: index])
        }
        if batch.counts[.packetsRead] != 0 { tund_counter_store(slots + Self.lastPacketSlot, nanoseconds) }
        tund_counters_write_end(slots + Self.sequenceSlot)
        batch = BatchTally()
    }

    func snapshot(queue: Int) -> QueueCounterValues {
        var counts = CounterTable()
        var lastPacket: UInt64 = 0
        var attempts = 0
        while true {
            let begun = tund_counters_read_begin(slots + Self.sequenceSlot)
            for index in 0..<Counter.count { counts[raw: index] = tund_counter_load(slots + index) }
            lastPacket = tund_counter_load(slots + Self.lastPacketSlot)
            if tund_counters_read_valid(slots + Self.sequenceSlot, begun) { break }
            // The writer publishes in well under a microsecond; if it was preempted mid-batch, let it run.
            attempts += 1
            if attempts % 64 == 0 { sched_yield() }
        }
        return QueueCounterValues(queue: queue, counts: counts, lastPacketAtNanoseconds: lastPacket)
    }
}

/// One wakeup's worth of counts, on the stack until published.
struct BatchTally {
    var counts = CounterTable()

    subscript(_ counter: Counter) -> UInt64 {
        get { counts[counter] }
        set { counts[counter] = newValue }
    }

    @inline(__always)
    mutating func count(_ packet: PacketClass, bytes: Int) {
        counts[.packetsRead] &+= 1
        counts[.bytesRead] &+= UInt64(bytes)
        if packet.malformed { counts[.droppedMalformed] &+= 1; return }
        switch packet.network {
        case .ipv4: counts[.ipv4] &+= 1
        case .ipv6: counts[.ipv6] &+= 1
        case .arp: counts[.arp] &+= 1
        case .other: break
        }
        switch packet.transport {
        case .icmp: counts[.icmp] &+= 1
        case .icmpv6: counts[.icmpv6] &+= 1
        case .tcp: counts[.tcp] &+= 1
        case .udp: counts[.udp] &+= 1
        case .other: counts[.other] &+= 1
        case .none: break
        }
    }
}
