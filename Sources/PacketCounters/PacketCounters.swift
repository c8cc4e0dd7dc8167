/// Every counter a queue's worker keeps, in one table. Tallying, publishing, snapshots, totals, `/metrics`
/// and the API's JSON all iterate it, so a new counter is one case here (with its JSON place and metric)
/// plus the line that counts it.
public enum Counter: Int, CaseIterable, Sendable {
    case packetsRead, bytesRead, packetsWritten, bytesWritten, readErrors, writeErrors
    /// Shorter than their own headers; read in `responder` mode but not something it answers; `tunnel`
    /// datagrams from a source other than the peer.
    case droppedMalformed, droppedIgnored, droppedUnexpectedSource
    /// The tunnel's UDP side (zero in other modes).
    case peerPacketsSent, peerBytesSent, peerPacketsReceived, peerBytesReceived, peerSendErrors, peerReceiveErrors
    /// Packets read, by protocol (see `PacketClass`).
    case ipv4, ipv6, arp, icmp, icmpv6, tcp, udp, other

    /// Where the API shows it: under `key` in `group` of a queue's object (nil: the object itself).
    public var json: (group: String?, key: String) {
        switch self {
        case .packetsRead: (nil, "packets_read")
        case .bytesRead: (nil, "bytes_read")
        case .packetsWritten: (nil, "packets_written")
        case .bytesWritten: (nil, "bytes_written")
        case .readErrors: (nil, "read_errors")
        case .writeErrors: (nil, "write_errors")
        case .droppedMalformed: ("dropped_reasons", "malformed")
        case .droppedIgnored: ("dropped_reasons", "ignored")
        case .droppedUnexpectedSource: ("dropped_reasons", "unexpected_source")
        case .peerPacketsSent: ("peer", "packets_sent")
        case .peerBytesSent: ("peer", "bytes_sent")
        case .peerPacketsReceived: ("peer", "packets_received")
        case .peerBytesReceived: ("peer", "bytes_received")
        case .peerSendErrors: ("peer", "send_errors")
        case .peerReceiveErrors: ("peer", "receive_errors")
        case .ipv4: ("protocols", "ipv4")
        case .ipv6: ("protocols", "ipv6")
        case .arp: ("protocols", "arp")
        case .icmp: ("protocols", "icmp")
        case .icmpv6: ("protocols", "icmpv6")
        case .tcp: ("protocols", "tcp")
        case .udp: ("protocols", "udp")
        case .other: ("protocols", "other")
        }
    }

    /// The Prometheus family it is a sample of, and the label that tells it apart there.
    public var metric: (family: String, label: (name: String, value: String)) {
        switch self {
        case .packetsRead: ("tund_worker_packets_total", ("direction", "read"))
        case .packetsWritten: ("tund_worker_packets_total", ("direction", "written"))
        case .bytesRead: ("tund_worker_bytes_total", ("direction", "read"))
        case .bytesWritten: ("tund_worker_bytes_total", ("direction", "written"))
        case .readErrors: ("tund_worker_errors_total", ("direction", "read"))
        case .writeErrors: ("tund_worker_errors_total", ("direction", "written"))
        case .droppedMalformed, .droppedIgnored, .droppedUnexpectedSource: ("tund_worker_dropped_total", ("reason", json.key))
        case .peerPacketsSent: ("tund_tunnel_packets_total", ("direction", "sent"))
        case .peerPacketsReceived: ("tund_tunnel_packets_total", ("direction", "received"))
        case .peerBytesSent: ("tund_tunnel_bytes_total", ("direction", "sent"))
        case .peerBytesReceived: ("tund_tunnel_bytes_total", ("direction", "received"))
        case .peerSendErrors: ("tund_tunnel_errors_total", ("direction", "sent"))
        case .peerReceiveErrors: ("tund_tunnel_errors_total", ("direction", "received"))
        case .ipv4, .ipv6, .arp, .icmp, .icmpv6, .tcp, .udp, .other: ("tund_worker_protocol_packets_total", ("protocol", json.key))
        }
    }

    /// The help text of each family `metric` names.
    public static let metricHelp: [String: String] = [
        "tund_worker_packets_total": "Packets the worker read from the device (direction=read) or wrote to it (written).",
        "tund_worker_bytes_total": "Bytes the worker read from the device or wrote to it.",
        "tund_worker_errors_total": "Failed reads and writes on the device's descriptors.",
        "tund_worker_dropped_total": "Packets the worker discarded, by reason.",
        "tund_tunnel_packets_total": "Datagrams a tunnel worker sent to its peer or received from it.",
        "tund_tunnel_bytes_total": "Payload bytes a tunnel worker sent to its peer or received from it.",
        "tund_tunnel_errors_total": "Failed sends to and receives from the tunnel peer.",
        "tund_worker_protocol_packets_total": "Packets read, by protocol (see the README for how they are counted).",
    ]

    /// How many counters a `CounterTable` holds at most: the enum may grow up to it.
    public static let capacity = 32
    /// How many there are. The hot path loops over raw values up to this, since `allCases` builds an
    /// array on every call.
    public static let count = allCases.count
    /// The counters `dropped` sums: those of the `dropped_reasons` group.
    public static let droppedReasons = allCases.filter { $0.json.group == "dropped_reasons" }
}

/// One value per counter, in fixed-size storage: a batch's tally allocates nothing.
/// Inlinable, since the data plane counts into it per packet from another module.
public struct CounterTable: Equatable, Sendable {
    @usableFromInline var values = InlineArray<32, UInt64>(repeating: 0)

    @inlinable public init() {}

    @inlinable public subscript(_ counter: Counter) -> UInt64 {
        get { values[counter.rawValue] }
        set { values[counter.rawValue] = newValue }
    }

    /// Every value in one buffer, indexed by raw value: for reading them all (an API answer) without a
    /// copy of the table per read, which a subscript through a property can cost.
    @inlinable public func withValues<Result>(_ body: (UnsafeBufferPointer<UInt64>) throws -> Result) rethrows -> Result {
        var copy = values
        return try withUnsafeBytes(of: &copy) { raw in try body(raw.bindMemory(to: UInt64.self)) }
    }

    /// By the counter's raw value, for loops over `0..<Counter.count`.
    @inlinable public subscript(raw index: Int) -> UInt64 {
        get { values[index] }
        set { values[index] = newValue }
    }

    /// Packets discarded, for any of the `dropped_reasons`.
    public var dropped: UInt64 {
        Counter.droppedReasons.reduce(0) { $0 &+ self[$1] }
    }

    public static func + (a: CounterTable, b: CounterTable) -> CounterTable {
        var sum = a
        sum.add(b)
        return sum
    }

    /// Adds `other`'s values to these, in place.
    @inlinable public mutating func add(_ other: CounterTable) {
        // Through one buffer: reading `other.values[index]` in the loop copied the whole table each time.
        other.withValues { theirs in
            for index in 0..<Counter.count { values[index] &+= theirs[index] }
        }
    }

    public static func == (a: CounterTable, b: CounterTable) -> Bool {
        (0..<Counter.count).allSatisfy { a[raw: $0] == b[raw: $0] }
    }
}

/// A queue's counters at one moment. Directions are the worker's: read = kernel -> worker,
/// written = worker -> kernel.
public struct QueueCounterValues: Equatable, Sendable {
    public var queue: Int
    public var counts: CounterTable
    public var lastPacketAtNanoseconds: UInt64

    public init(queue: Int, counts: CounterTable = CounterTable(), lastPacketAtNanoseconds: UInt64 = 0) {
        self.queue = queue
        self.counts = counts
        self.lastPacketAtNanoseconds = lastPacketAtNanoseconds
    }

    public subscript(_ counter: Counter) -> UInt64 { counts[counter] }
    public var dropped: UInt64 { counts.dropped }
}
