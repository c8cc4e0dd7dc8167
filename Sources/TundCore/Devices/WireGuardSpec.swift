import NetAddress

/// A `wireguard` worker's configuration: the device's own key and port, and its peers. Keys are 32 raw
/// bytes here; the API turns them from and into base64. The private key and preshared keys are secrets:
/// `description` never shows them, so neither does any log line or error built from a spec.
public struct WireGuardSpec: Equatable, Sendable, CustomStringConvertible {
    public var privateKey: [UInt8]
    public var listenPort: Int
    public var peers: [WireGuardPeerSpec]
    /// The request named no private key and `privateKey` was drawn for it: a device that has one already
    /// keeps its own, so re-declaring a device (`PUT /devices`, `PATCH`) never rotates its key and cuts
    /// off its peers. Not stored, and not part of equality.
    public var privateKeyDrawn: Bool

    public static let keyCount = 32
    public static let maximumPeers = 4096

    public init(privateKey: [UInt8], listenPort: Int, peers: [WireGuardPeerSpec] = [], privateKeyDrawn: Bool = false) {
        self.privateKey = privateKey
        self.listenPort = listenPort
        self.peers = peers
        self.privateKeyDrawn = privateKeyDrawn
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.privateKey == rhs.privateKey && lhs.listenPort == rhs.listenPort && lhs.peers == rhs.peers
    }

    /// This spec as a change of `current`: with the current key when this one's was only drawn.
    public func keepingKey(of current: WireGuardSpec?) -> WireGuardSpec {
        guard privateKeyDrawn, let current else { return self }
        var kept = self
        kept.privateKey = current.privateKey
        kept.privateKeyDrawn = false
        return kept
    }

    public var description: String {
        "WireGuardSpec(listenPort: \(listenPort), peers: \(peers.map(\.description)), privateKey: <secret>)"
    }

    /// Checks everything that can be known without the kernel, naming the field of the first problem.
    public func validate() throws(TundError) {
        guard privateKey.count == Self.keyCount, privateKey.contains(where: { $0 != 0 }) else {
            throw .invalidField(field: "worker.private_key", reason: "must be 32 bytes of base64 (wg genkey), not all zero")
        }
        guard (1...65535).contains(listenPort) else {
            throw .invalidField(field: "worker.listen_port", reason: "must be between 1 and 65535, got \(listenPort)")
        }
        guard peers.count <= Self.maximumPeers else {
            throw .invalidField(field: "worker.peers", reason: "at most \(Self.maximumPeers) peers")
        }
        var keys = Set<[UInt8]>()
        for (index, peer) in peers.enumerated() {
            try peer.validate(field: "worker.peers[\(index)]")
            guard keys.insert(peer.publicKey).inserted else {
                throw .invalidField(field: "worker.peers[\(index)].public_key", reason: "the peer is listed twice")
            }
        }
    }
}

/// One peer: whom it is (public key), where it was last heard or is first sent to (endpoint), and what
/// it may send and be sent (allowed IPs, the cryptokey routing table).
public struct WireGuardPeerSpec: Equatable, Sendable, CustomStringConvertible {
    public var publicKey: [UInt8]
    public var presharedKey: [UInt8]?
    public var endpoint: SocketAddress?
    public var allowedIPs: [IPPrefix]
    /// Seconds between keepalives sent whatever the traffic (NAT mappings); nil: off.
    public var persistentKeepalive: Int?

    public static let maximumAllowedIPs = 1024

    public init(publicKey: [UInt8], presharedKey: [UInt8]? = nil, endpoint: SocketAddress? = nil, allowedIPs: [IPPrefix] = [],
                persistentKeepalive: Int? = nil) {
        self.publicKey = publicKey
        self.presharedKey = presharedKey
        self.endpoint = endpoint
        self.allowedIPs = allowedIPs
        self.persistentKeepalive = persistentKeepalive
    }

    public var description: String {
        "WireGuardPeerSpec(publicKey: \(publicKey.map { String($0, radix: 16) }.joined()), endpoint: \(endpoint?.description ?? "none"), "
            + "allowedIPs: \(allowedIPs.map(\.description)), persistentKeepalive: \(persistentKeepalive.map(String.init) ?? "off"), "
            + "presharedKey: \(presharedKey == nil ? "none" : "<secret>"))"
    }

    func validate(field: String) throws(TundError) {
        guard publicKey.count == WireGuardSpec.keyCount else {
            throw .invalidField(field: "\(field).public_key", reason: "must be 32 bytes of base64 (wg pubkey)")
        }
        if let presharedKey, presharedKey.count != WireGuardSpec.keyCount {
            throw .invalidField(field: "\(field).preshared_key", reason: "must be 32 bytes of base64 (wg genpsk)")
        }
        if let persistentKeepalive, !(1...65535).contains(persistentKeepalive) {
            throw .invalidField(field: "\(field).persistent_keepalive", reason: "must be between 1 and 65535 seconds, or absent for off")
        }
        guard allowedIPs.count <= Self.maximumAllowedIPs else {
            throw .invalidField(field: "\(field).allowed_ips", reason: "at most \(Self.maximumAllowedIPs) prefixes")
        }
        if let endpoint, let reason = endpoint.address.unusableAsInterfaceAddressReason, !reason.contains("loopback") {
            throw .invalidField(field: "\(field).endpoint", reason: "\(endpoint.address) is \(reason)")
        }
    }
}
