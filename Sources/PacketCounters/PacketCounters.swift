/// What a queue's packet worker has counted, as values: shared by the data plane that counts, the core
/// that sums queues into a worker, and the API that shows them.
public struct ProtocolCounts: Equatable, Sendable {
    public var ipv4: UInt64 = 0, ipv6: UInt64 = 0, arp: UInt64 = 0, icmp: UInt64 = 0
    public var icmpv6: UInt64 = 0, tcp: UInt64 = 0, udp: UInt64 = 0, other: UInt64 = 0

    public init(ipv4: UInt64 = 0, ipv6: UInt64 = 0, arp: UInt64 = 0, icmp: UInt64 = 0, icmpv6: UInt64 = 0,
                tcp: UInt64 = 0, udp: UInt64 = 0, other: UInt64 = 0) {
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self.arp = arp
        self.icmp = icmp
        self.icmpv6 = icmpv6
        self.tcp = tcp
        self.udp = udp
        self.other = other
    }

    public static func + (a: ProtocolCounts, b: ProtocolCounts) -> ProtocolCounts {
        ProtocolCounts(ipv4: a.ipv4 &+ b.ipv4, ipv6: a.ipv6 &+ b.ipv6, arp: a.arp &+ b.arp, icmp: a.icmp &+ b.icmp,
                       icmpv6: a.icmpv6 &+ b.icmpv6, tcp: a.tcp &+ b.tcp, udp: a.udp &+ b.udp, other: a.other &+ b.other)
    }
}

/// A queue's counters at one moment. Directions are the worker's: read = kernel -> worker,
/// written = worker -> kernel.
public struct QueueCounterValues: Equatable, Sendable {
    public var queue: Int
    public var packetsRead: UInt64, bytesRead: UInt64, packetsWritten: UInt64, bytesWritten: UInt64
    public var readErrors: UInt64, writeErrors: UInt64
    /// Packets discarded, for any of the reasons below.
    public var dropped: UInt64
    /// Shorter than their own headers.
    public var droppedMalformed: UInt64
    /// Read in `responder` mode but not something it answers.
    public var droppedIgnored: UInt64
    /// `tunnel` datagrams from a source other than the peer.
    public var droppedUnexpectedSource: UInt64
    /// The tunnel's UDP side (zero in other modes).
    public var peer: PeerCounters
    public var protocols: ProtocolCounts
    public var lastPacketAtNanoseconds: UInt64

    public init(queue: Int, packetsRead: UInt64 = 0, bytesRead: UInt64 = 0, packetsWritten: UInt64 = 0, bytesWritten: UInt64 = 0,
                readErrors: UInt64 = 0, writeErrors: UInt64 = 0, dropped: UInt64 = 0, droppedMalformed: UInt64 = 0,
                droppedIgnored: UInt64 = 0, droppedUnexpectedSource: UInt64 = 0, peer: PeerCounters = PeerCounters(),
                protocols: ProtocolCounts = ProtocolCounts(), lastPacketAtNanoseconds: UInt64 = 0) {
        self.queue = queue
        self.packetsRead = packetsRead
        self.bytesRead = bytesRead
        self.packetsWritten = packetsWritten
        self.bytesWritten = bytesWritten
        self.readErrors = readErrors
        self.writeErrors = writeErrors
        self.dropped = dropped
        self.droppedMalformed = droppedMalformed
        self.droppedIgnored = droppedIgnored
        self.droppedUnexpectedSource = droppedUnexpectedSource
        self.peer = peer
        self.protocols = protocols
        self.lastPacketAtNanoseconds = lastPacketAtNanoseconds
    }
}

/// What a `tunnel` worker sent to its peer and received from it.
public struct PeerCounters: Equatable, Sendable {
    public var packetsSent: UInt64 = 0, bytesSent: UInt64 = 0, packetsReceived: UInt64 = 0, bytesReceived: UInt64 = 0
    public var sendErrors: UInt64 = 0, receiveErrors: UInt64 = 0

    public init(packetsSent: UInt64 = 0, bytesSent: UInt64 = 0, packetsReceived: UInt64 = 0, bytesReceived: UInt64 = 0,
                sendErrors: UInt64 = 0, receiveErrors: UInt64 = 0) {
        self.packetsSent = packetsSent
        self.bytesSent = bytesSent
        self.packetsReceived = packetsReceived
        self.bytesReceived = bytesReceived
        self.sendErrors = sendErrors
        self.receiveErrors = receiveErrors
    }

    public static func + (a: PeerCounters, b: PeerCounters) -> PeerCounters {
        PeerCounters(packetsSent: a.packetsSent &+ b.packetsSent, bytesSent: a.bytesSent &+ b.bytesSent,
                     packetsReceived: a.packetsReceived &+ b.packetsReceived, bytesReceived: a.bytesReceived &+ b.bytesReceived,
                     sendErrors: a.sendErrors &+ b.sendErrors, receiveErrors: a.receiveErrors &+ b.receiveErrors)
    }
}

