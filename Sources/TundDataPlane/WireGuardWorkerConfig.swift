import NetAddress
import WireGuardCrypto

/// One peer of a `wireguard` worker, as the control plane configures it (what `wg set ... peer` takes).
public struct WireGuardPeerConfig: Sendable, Equatable, CustomStringConvertible {
    /// The peer's static Curve25519 public key, 32 bytes: the peer's identity.
    public var publicKey: [UInt8]
    /// 32 bytes mixed into the handshake (`wg`'s preshared-key); nil for none.
    public var presharedKey: [UInt8]?
    /// Where to send handshakes and data until the peer is heard from elsewhere (roaming); nil: wait for
    /// the peer to initiate, then answer where it came from.
    public var endpoint: SocketAddress?
    /// Cryptokey routing: packets to these prefixes go to this peer, and only packets from these sources
    /// are accepted from it.
    public var allowedIPs: [IPPrefix]
    /// Seconds between keepalives sent whatever the traffic (for NAT mappings); 0 off.
    public var persistentKeepaliveSeconds: Int

    public init(publicKey: [UInt8], presharedKey: [UInt8]? = nil, endpoint: SocketAddress? = nil,
                allowedIPs: [IPPrefix] = [], persistentKeepaliveSeconds: Int = 0) {
        self.publicKey = publicKey
        self.presharedKey = presharedKey
        self.endpoint = endpoint
        self.allowedIPs = allowedIPs
        self.persistentKeepaliveSeconds = persistentKeepaliveSeconds
    }

    /// The preshared key is secret too: said to be there, never shown.
    public var description: String {
        "WireGuardPeerConfig(publicKey: \(Base64Key.encode(publicKey)), presharedKey: \(presharedKey == nil ? "none" : "(hidden)"), "
            + "endpoint: \(endpoint.map(\.description) ?? "none"), allowedIPs: \(allowedIPs), persistentKeepaliveSeconds: \(persistentKeepaliveSeconds))"
    }
}

/// A `wireguard` worker: the device's own key, its UDP port, its peers.
public struct WireGuardWorkerConfig: Sendable, Equatable, CustomStringConvertible {
    /// The device's static Curve25519 private key, 32 bytes. Never logged or printed: `description`
    /// leaves it out, so interpolating the config (or the `WorkerSpec.Mode` holding it) cannot leak it.
    public var privateKey: [UInt8]
    /// The UDP port bound on every address (IPv6 and IPv4); 0 lets the kernel pick.
    public var listenPort: UInt16
    public var peers: [WireGuardPeerConfig]
    /// The device's MTU: padding to a multiple of 16 stops at it, as the protocol says (0: no bound).
    public var mtu: Int

    public init(privateKey: [UInt8], listenPort: UInt16, peers: [WireGuardPeerConfig] = [], mtu: Int = 0) {
        self.privateKey = privateKey
        self.listenPort = listenPort
        self.peers = peers
        self.mtu = mtu
    }

    public var description: String { "WireGuardWorkerConfig(listenPort: \(listenPort), peers: \(peers.count), privateKey: (hidden))" }
}

/// What a wireguard worker tells the control plane about a peer, as it happens.
public struct WireGuardPeerEvent: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// A handshake completed; the peer has fresh keys.
        case handshake
        /// The peer has no usable session any more: handshake attempts gave up, or its keys expired.
        case stale(reason: String)
    }

    public var kind: Kind
    /// Base64, as `wg` prints it.
    public var publicKey: String
    public var endpoint: SocketAddress?
}
