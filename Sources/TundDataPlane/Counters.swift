import CBatchIO
import PacketCounters

/// Counters of one queue. Its thread is the only writer: it adds up a batch in a `CounterTable` on the
/// stack and publishes it with relaxed stores, so the hot path takes no lock and no atomic
/// read-modify-write; readers load whenever they like. One slot per `Counter`, then the time of the last
/// packet.
public final class QueueCounters: @unchecked Sendable {
    private let slots: UnsafeMutablePointer<UInt64>
    private static let lastPacketSlot = Counter.capacity

    init() {
        precondition(Counter.allCases.count <= Counter.capacity, "CounterTable holds \(Counter.capacity) counters")
        slots = .allocate(capacity: Counter.capacity + 1)
        slots.initialize(repeating: 0, count: Counter.capacity + 1)
    }

    deinit { slots.deallocate() }

    /// Adds a batch's tallies. Called only by the queue's own thread.
    func publish(_ batch: inout BatchTally, at nanoseconds: UInt64) {
        for index in 0..<Counter.count where batch.counts[raw: index] != 0 {
            tund_counter_add(slots + index, batch.counts[raw: index])
        }
        if batch.counts[.packetsRead] != 0 { tund_counter_store(slots + Self.lastPacketSlot, nanoseconds) }
        batch = BatchTally()
    }

    func snapshot(queue: Int) -> QueueCounterValues {
        var counts = CounterTable()
        for index in 0..<Counter.count { counts[raw: index] = tund_counter_load(slots + index) }
        return QueueCounterValues(queue: queue, counts: counts, lastPacketAtNanoseconds: tund_counter_load(slots + Self.lastPacketSlot))
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
