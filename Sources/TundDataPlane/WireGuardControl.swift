import PacketCounters

/// The control plane's handle on a running `wireguard` worker (`PlaneWorker.wireGuard`).
///
/// Why a lock and not a queue of changes for the thread to apply: the worker's thread takes the lock
/// once per batch (a device read, a socket read, a timer), never per packet, so uncontended it costs
/// tens of nanoseconds per batch; `setPeers` is rare and short (no system call but arming a timerfd).
/// In exchange `setPeers` is synchronous: when it returns the new peer set is in force, and `peers()`
/// right after it shows it, with no acknowledgement protocol, no lost update if the worker stops
/// meanwhile, and no copy of the peer table for a reader. After a change the timerfd is armed to fire at
/// once, so the thread re-reads every deadline (a keepalive turned on goes out without waiting).
public final class WireGuardControl: Sendable {
    let engine: WireGuardEngine
    /// The device's public key (derived from the configured private key), for the peers' configuration.
    public let publicKey: [UInt8]
    /// The UDP port the worker's socket is bound to (the kernel's pick when 0 was configured).
    public let listenPort: UInt16

    init(engine: WireGuardEngine) {
        self.engine = engine
        publicKey = engine.publicKey.bytes
        listenPort = engine.socket.boundPort
    }

    /// Replaces the peers live: a peer kept (same public key and preshared key) keeps its sessions,
    /// timers and statistics and takes the new endpoint, allowed IPs and keepalive; a peer removed
    /// loses its sessions; a new one starts empty. Public keys that are not 32 bytes are skipped.
    public func setPeers(_ peers: [WireGuardPeerConfig]) {
        engine.locked { engine.setPeers(peers) }
    }

    /// The device's new MTU, for the padding of what is sealed from now on.
    public func setMTU(_ mtu: Int) {
        engine.locked { engine.mtu = mtu }
    }

    /// Every peer's endpoint, last handshake, traffic and drops, ordered by public key.
    public func peers() -> [WireGuardPeerStatus] {
        engine.locked { engine.statuses() }
    }

    /// Drops that name no peer, by reason: no_route (no peer's allowed IPs hold the destination),
    /// unknown_peer (a receiver index or static key of no peer), bad_mac (a handshake not made for us).
    public func deviceDrops() -> [String: UInt64] {
        engine.locked { engine.deviceDrops }
    }
}
