import NetAddress

/// Why a received packet was dropped, as the API counts them.
public enum DropReason: CaseIterable, Hashable, Sendable {
    /// MAC1 wrong (not made for our public key), or a transport message whose tag did not verify.
    case badMAC
    /// A transport counter already seen or behind the window, or a handshake timestamp not newer.
    case replay
    /// A receiver index or static key that names no peer (counted on the device: there is no peer).
    case unknownPeer
    /// A decrypted packet whose source address does not route back to the peer that sent it.
    case sourceNotAllowed
    /// A handshake message answered with a cookie reply instead, because the device is under load.
    case underLoadCookie
}

/// Counts of dropped packets by reason; one per peer, and one on the device for what names no peer.
public struct DropCounts: Equatable, Sendable {
    public var badMAC: UInt64 = 0
    public var replay: UInt64 = 0
    public var unknownPeer: UInt64 = 0
    public var sourceNotAllowed: UInt64 = 0
    public var underLoadCookie: UInt64 = 0

    public init() {}

    public subscript(reason: DropReason) -> UInt64 {
        get {
            switch reason {
            case .badMAC: badMAC
            case .replay: replay
            case .unknownPeer: unknownPeer
            case .sourceNotAllowed: sourceNotAllowed
            case .underLoadCookie: underLoadCookie
            }
        }
        set {
            switch reason {
            case .badMAC: badMAC = newValue
            case .replay: replay = newValue
            case .unknownPeer: unknownPeer = newValue
            case .sourceNotAllowed: sourceNotAllowed = newValue
            case .underLoadCookie: underLoadCookie = newValue
            }
        }
    }

    /// All reasons together.
    public var total: UInt64 { DropReason.allCases.reduce(0) { $0 &+ self[$1] } }
}

/// What the API shows of one peer. A plain value the data plane updates on its own thread and copies
/// out when asked; counters wrap rather than trap, since a statistic must never stop the packet path.
public struct PeerStatistics: Equatable, Sendable {
    /// Transport payload bytes (after decryption / before encryption), keepalives count as packets only.
    public var bytesSent: UInt64 = 0
    public var bytesReceived: UInt64 = 0
    public var packetsSent: UInt64 = 0
    public var packetsReceived: UInt64 = 0
    /// Wall-clock time of the last completed handshake in nanoseconds since the Unix epoch, as `wg show`
    /// prints it (the caller reads the wall clock: this target reads none); nil before the first.
    public var lastHandshakeUnixNanoseconds: Int64?
    public var handshakesInitiated: UInt64 = 0
    public var handshakesCompleted: UInt64 = 0
    /// Where the peer was last heard from (or configured): the address packets to it go to.
    public var endpoint: SocketAddress?
    public var drops = DropCounts()

    public init(endpoint: SocketAddress? = nil) {
        self.endpoint = endpoint
    }

    /// One transport message sent with `payloadBytes` (0 for a keepalive).
    public mutating func recordSent(payloadBytes: Int) {
        packetsSent &+= 1
        bytesSent &+= UInt64(payloadBytes)
    }

    /// One authenticated transport message received with `payloadBytes`.
    public mutating func recordReceived(payloadBytes: Int) {
        packetsReceived &+= 1
        bytesReceived &+= UInt64(payloadBytes)
    }

    /// A handshake completed at `unixNanoseconds` (wall clock).
    public mutating func recordHandshake(at unixNanoseconds: Int64) {
        handshakesCompleted &+= 1
        lastHandshakeUnixNanoseconds = unixNanoseconds
    }

    public mutating func recordDrop(_ reason: DropReason) {
        drops[reason] &+= 1
    }
}
