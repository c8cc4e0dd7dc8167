import NetAddress

/// One peer of a running wireguard worker, as `wg show` shows it: what the data plane reports and the
/// control plane shows.
public struct WireGuardPeerStatus: Sendable, Equatable {
    public var publicKey: [UInt8]
    /// Where packets to the peer go now: configured, or where it was last heard from.
    public var endpoint: SocketAddress?
    /// Wall-clock time of the last completed handshake, nanoseconds since the Unix epoch; nil before one.
    public var lastHandshakeUnixNanoseconds: UInt64?
    /// Transport payload bytes (inner packets, before padding and encryption) and transport messages
    /// (keepalives count as packets, not bytes), each way.
    public var rxBytes: UInt64
    public var txBytes: UInt64
    public var rxPackets: UInt64
    public var txPackets: UInt64
    public var handshakesInitiated: UInt64
    public var handshakesCompleted: UInt64
    /// Dropped packets by reason: bad_mac, replay, unknown_peer, source_not_allowed, under_load_cookie,
    /// no_session (no keypair and no endpoint to start one, staging full, or handshake retries gave up).
    public var drops: [String: UInt64]

    public init(publicKey: [UInt8], endpoint: SocketAddress?, lastHandshakeUnixNanoseconds: UInt64?, rxBytes: UInt64,
                txBytes: UInt64, rxPackets: UInt64, txPackets: UInt64, handshakesInitiated: UInt64,
                handshakesCompleted: UInt64, drops: [String: UInt64]) {
        self.publicKey = publicKey
        self.endpoint = endpoint
        self.lastHandshakeUnixNanoseconds = lastHandshakeUnixNanoseconds
        self.rxBytes = rxBytes
        self.txBytes = txBytes
        self.rxPackets = rxPackets
        self.txPackets = txPackets
        self.handshakesInitiated = handshakesInitiated
        self.handshakesCompleted = handshakesCompleted
        self.drops = drops
    }
}
