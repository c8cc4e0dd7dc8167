import PacketCounters
import Synchronization

/// Counters of one queue's worker thread. The thread is the only writer: it adds up a batch in plain
/// integers and publishes it with relaxed stores, so the hot path takes no lock and no atomic
/// read-modify-write; readers load whenever they like.
public final class QueueCounters: Sendable {
    let packetsRead = Atomic<UInt64>(0), bytesRead = Atomic<UInt64>(0)
    let packetsWritten = Atomic<UInt64>(0), bytesWritten = Atomic<UInt64>(0)
    let readErrors = Atomic<UInt64>(0), writeErrors = Atomic<UInt64>(0), dropped = Atomic<UInt64>(0)
    let ipv4 = Atomic<UInt64>(0), ipv6 = Atomic<UInt64>(0), arp = Atomic<UInt64>(0)
    let icmp = Atomic<UInt64>(0), icmpv6 = Atomic<UInt64>(0), tcp = Atomic<UInt64>(0), udp = Atomic<UInt64>(0)
    let other = Atomic<UInt64>(0)
    let ignored = Atomic<UInt64>(0), unexpectedSource = Atomic<UInt64>(0)
    let peerPacketsSent = Atomic<UInt64>(0), peerBytesSent = Atomic<UInt64>(0)
    let peerPacketsReceived = Atomic<UInt64>(0), peerBytesReceived = Atomic<UInt64>(0)
    let peerSendErrors = Atomic<UInt64>(0), peerReceiveErrors = Atomic<UInt64>(0)
    /// Nanoseconds since the Unix epoch of the last packet read; 0 before the first.
    let lastPacketAt = Atomic<UInt64>(0)

    init() {}

    /// Adds a batch's tallies. Called only by the queue's own thread.
    func publish(_ batch: inout BatchTally, at nanoseconds: UInt64) {
        func add(_ counter: borrowing Atomic<UInt64>, _ amount: UInt64) {
            if amount != 0 { counter.store(counter.load(ordering: .relaxed) &+ amount, ordering: .relaxed) }
        }
        add(packetsRead, batch.packetsRead); add(bytesRead, batch.bytesRead)
        add(packetsWritten, batch.packetsWritten); add(bytesWritten, batch.bytesWritten)
        add(readErrors, batch.readErrors); add(writeErrors, batch.writeErrors); add(dropped, batch.dropped)
        add(ignored, batch.ignored); add(unexpectedSource, batch.unexpectedSource)
        add(peerPacketsSent, batch.peerPacketsSent); add(peerBytesSent, batch.peerBytesSent)
        add(peerPacketsReceived, batch.peerPacketsReceived); add(peerBytesReceived, batch.peerBytesReceived)
        add(peerSendErrors, batch.peerSendErrors); add(peerReceiveErrors, batch.peerReceiveErrors)
        add(ipv4, batch.ipv4); add(ipv6, batch.ipv6); add(arp, batch.arp)
        add(icmp, batch.icmp); add(icmpv6, batch.icmpv6); add(tcp, batch.tcp); add(udp, batch.udp); add(other, batch.other)
        if batch.packetsRead != 0 { lastPacketAt.store(nanoseconds, ordering: .relaxed) }
        batch = BatchTally()
    }

    func snapshot(queue: Int) -> QueueCounterValues {
        QueueCounterValues(
            queue: queue,
            packetsRead: packetsRead.load(ordering: .relaxed), bytesRead: bytesRead.load(ordering: .relaxed),
            packetsWritten: packetsWritten.load(ordering: .relaxed), bytesWritten: bytesWritten.load(ordering: .relaxed),
            readErrors: readErrors.load(ordering: .relaxed), writeErrors: writeErrors.load(ordering: .relaxed),
            dropped: dropped.load(ordering: .relaxed) &+ ignored.load(ordering: .relaxed) &+ unexpectedSource.load(ordering: .relaxed),
            droppedMalformed: dropped.load(ordering: .relaxed), droppedIgnored: ignored.load(ordering: .relaxed),
            droppedUnexpectedSource: unexpectedSource.load(ordering: .relaxed),
            peer: PeerCounters(
                packetsSent: peerPacketsSent.load(ordering: .relaxed), bytesSent: peerBytesSent.load(ordering: .relaxed),
                packetsReceived: peerPacketsReceived.load(ordering: .relaxed), bytesReceived: peerBytesReceived.load(ordering: .relaxed),
                sendErrors: peerSendErrors.load(ordering: .relaxed), receiveErrors: peerReceiveErrors.load(ordering: .relaxed)),
            protocols: ProtocolCounts(
                ipv4: ipv4.load(ordering: .relaxed), ipv6: ipv6.load(ordering: .relaxed), arp: arp.load(ordering: .relaxed),
                icmp: icmp.load(ordering: .relaxed), icmpv6: icmpv6.load(ordering: .relaxed), tcp: tcp.load(ordering: .relaxed),
                udp: udp.load(ordering: .relaxed), other: other.load(ordering: .relaxed)),
            lastPacketAtNanoseconds: lastPacketAt.load(ordering: .relaxed))
    }
}

/// One wakeup's worth of counts, kept in registers until published.
struct BatchTally {
    var packetsRead: UInt64 = 0, bytesRead: UInt64 = 0, readErrors: UInt64 = 0, dropped: UInt64 = 0
    var packetsWritten: UInt64 = 0, bytesWritten: UInt64 = 0, writeErrors: UInt64 = 0
    var ignored: UInt64 = 0, unexpectedSource: UInt64 = 0
    var peerPacketsSent: UInt64 = 0, peerBytesSent: UInt64 = 0, peerPacketsReceived: UInt64 = 0, peerBytesReceived: UInt64 = 0
    var peerSendErrors: UInt64 = 0, peerReceiveErrors: UInt64 = 0
    var ipv4: UInt64 = 0, ipv6: UInt64 = 0, arp: UInt64 = 0
    var icmp: UInt64 = 0, icmpv6: UInt64 = 0, tcp: UInt64 = 0, udp: UInt64 = 0, other: UInt64 = 0

    @inline(__always)
    mutating func count(_ packet: PacketClass, bytes: Int) {
        packetsRead &+= 1
        bytesRead &+= UInt64(bytes)
        if packet.malformed { dropped &+= 1; return }
        switch packet.network {
        case .ipv4: ipv4 &+= 1
        case .ipv6: ipv6 &+= 1
        case .arp: arp &+= 1
        case .other: break
        }
        switch packet.transport {
        case .icmp: icmp &+= 1
        case .icmpv6: icmpv6 &+= 1
        case .tcp: tcp &+= 1
        case .udp: udp &+= 1
        case .other: other &+= 1
        case .none: break
        }
    }
}

