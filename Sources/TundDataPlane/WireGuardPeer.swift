#if canImport(Glibc)
import Glibc
#endif
import NetAddress
import PacketCounters
import WireGuardCrypto
import WireGuardNoise
import WireGuardPeers

/// One peer of a `wireguard` worker as its thread keeps it: handshake state, keypairs, timers, where to
/// send, what waits for a session, statistics. Touched only under the engine's lock (see
/// `WireGuardControl`).
final class WireGuardPeer {
    /// Packets kept while no keypair may send (per peer, as the kernel's queue of staged packets):
    /// enough for a burst during a handshake, bounded so a dead peer cannot eat memory.
    static let stagedLimit = 128

    let publicKey: PublicKey
    var config: WireGuardPeerConfig
    var presharedKey: SecretBytes?
    let initiator: Initiator
    var cookies: CookieGenerator
    /// The local index of the initiation in flight (its response carries it), to free when replaced.
    var pendingHandshakeIndex: UInt32?
    var keypairs = Keypairs()
    var timers: PeerTimers
    var statistics: PeerStatistics
    var noSessionDrops: UInt64 = 0
    /// The greatest TAI64N accepted in an initiation from this peer: an older or equal one is a replay.
    var latestTimestamp: TAI64N?
    /// Where datagrams go, in the socket's own form (v4-mapped on the dual-stack socket). One allocation
    /// per peer, so a send queue may point at it until it is flushed.
    let endpoint: UnsafeMutablePointer<sockaddr_storage>
    var endpointLength: socklen_t = 0
    /// Inner packets waiting for a session, oldest first. Copies: this is the slow path (no session),
    /// and the read buffers are reused by the next batch.
    var staged: [[UInt8]] = []
    /// A keepalive asked for by configuration, sent by the worker's thread when it next wakes.
    var keepaliveRequested = false

    init(config: WireGuardPeerConfig, localStatic: X25519.PrivateKey, socket: WireGuardSocket) throws(CryptoError) {
        publicKey = try PublicKey(bytes: config.publicKey)
        self.config = config
        presharedKey = config.presharedKey.map { SecretBytes(copying: $0) }
        initiator = Initiator(localStatic: localStatic, peer: publicKey, presharedKey: presharedKey)
        cookies = try CookieGenerator(peerPublic: publicKey)
        // Off until `setPeers` turns it on through `setPersistentKeepalive`, which also asks for the
        // first keepalive at once (as `wg set` does).
        timers = PeerTimers(persistentKeepaliveInterval: 0)
        statistics = PeerStatistics(endpoint: config.endpoint)
        endpoint = .allocate(capacity: 1)
        endpoint.initialize(to: sockaddr_storage())
        if let configured = config.endpoint { setEndpoint(configured, socket: socket) }
    }

    deinit { endpoint.deallocate() }

    var hasEndpoint: Bool { endpointLength != 0 }

    func setEndpoint(_ address: SocketAddress, socket: WireGuardSocket) {
        let storage = socket.storage(for: address)
        endpoint.pointee = storage.storage
        endpointLength = storage.length
        statistics.endpoint = address
    }

    /// Roaming: the peer's endpoint becomes the source of its last authenticated datagram. Compared
    /// first, so the steady state costs a memcmp and no allocation.
    func roam(to source: UnsafeRawPointer, length: socklen_t) {
        if endpointLength == length, memcmp(endpoint, source, Int(length)) == 0 { return }
        guard let address = SocketAddressStorage.socketAddress(source, length: length) else { return }
        memcpy(endpoint, source, Int(length))
        endpointLength = length
        statistics.endpoint = address
    }

    /// Keeps a packet for when a session exists; when the queue is full the oldest goes (and is counted).
    func stage(_ packet: UnsafeRawBufferPointer) {
        if staged.count >= Self.stagedLimit {
            // The kernel drops the oldest: the newest packets are the ones worth sending late.
            staged.removeFirst()
            noSessionDrops &+= 1
        }
        staged.append(Array(packet))
    }

    var status: WireGuardPeerStatus {
        let drops = statistics.drops
        return WireGuardPeerStatus(
            publicKey: config.publicKey, endpoint: statistics.endpoint,
            lastHandshakeUnixNanoseconds: statistics.lastHandshakeUnixNanoseconds.map { UInt64(max(0, $0)) },
            rxBytes: statistics.bytesReceived, txBytes: statistics.bytesSent,
            rxPackets: statistics.packetsReceived, txPackets: statistics.packetsSent,
            handshakesInitiated: statistics.handshakesInitiated, handshakesCompleted: statistics.handshakesCompleted,
            drops: ["bad_mac": drops.badMAC, "replay": drops.replay, "unknown_peer": drops.unknownPeer,
                    "source_not_allowed": drops.sourceNotAllowed, "under_load_cookie": drops.underLoadCookie,
                    "no_session": noSessionDrops])
    }
}

/// A peer is itself: the allowed-IPs table maps prefixes straight to peer objects.
extension WireGuardPeer: Hashable {
    static func == (a: WireGuardPeer, b: WireGuardPeer) -> Bool { a === b }
    func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}
