import TundCore
import TundDataPlane

/// The core's `PacketWorkers` port over the data plane: the core's words (device kind, worker mode,
/// tunnel spec, capture hub) turned into the plane's. The executable wires it, as it does the kernel and
/// the store; tests wire it the same way.
public struct DataPlaneWorkers: PacketWorkers {
    public let plane: DataPlane

    public init(plane: DataPlane) {
        self.plane = plane
    }

    public func start(_ request: WorkerRequest) throws(KernelError) -> any RunningWorker {
        let mode: WorkerSpec.Mode
        switch request.mode {
        case .count: mode = .count
        case .echo: mode = .echo
        case .responder: mode = .responder
        case .none:
            throw KernelError(operation: "starting a worker for \(request.name), whose mode is none", errno: .EINVAL)
        case .wireguard:
            guard let wireguard = request.wireguard else {
                throw KernelError(operation: "starting \(request.name)'s wireguard worker without keys", errno: .EINVAL)
            }
            mode = .wireguard(WireGuardWorkerConfig(privateKey: wireguard.privateKey, listenPort: UInt16(wireguard.listenPort),
                                                    peers: wireguard.peers.map(Self.peer), mtu: request.mtu))
        case .tunnel:
            guard let tunnel = request.tunnel else {
                throw KernelError(operation: "starting \(request.name)'s tunnel without endpoints", errno: .EINVAL)
            }
            mode = .tunnel(local: tunnel.local, remote: tunnel.remote)
        }
        do {
            return try plane.start(WorkerSpec(name: request.name, kind: request.kind == .tun ? .tun : .tap, mode: mode,
                                              descriptors: request.descriptors, vnetHeader: request.vnetHeader,
                                              tap: request.capture, onFailure: request.onFailure, onPeerEvent: Self.forwarding(request.onPeerEvent)))
        } catch {
            throw KernelError(operation: error.operation, errno: error.errno)
        }
    }
}

extension DataPlaneWorkers {
    static func forwarding(_ handler: @escaping @Sendable (WireGuardPeerNotice) -> Void) -> @Sendable (WireGuardPeerEvent) -> Void {
        { event in
            let kind: WireGuardPeerNotice.Kind
            switch event.kind {
            case .handshake: kind = .handshake
            case .stale(let reason): kind = .stale(reason: reason)
            }
            handler(WireGuardPeerNotice(kind: kind, publicKey: event.publicKey, endpoint: event.endpoint?.description))
        }
    }

    static func peer(_ peer: WireGuardPeerSpec) -> WireGuardPeerConfig {
        WireGuardPeerConfig(publicKey: peer.publicKey, presharedKey: peer.presharedKey, endpoint: peer.endpoint,
                            allowedIPs: peer.allowedIPs, persistentKeepaliveSeconds: peer.persistentKeepalive ?? 0)
    }
}

extension PlaneWorker: RunningWorker {
    public func wireGuardPeers() -> [WireGuardPeerStatus] { wireGuard?.peers() ?? [] }

    public func wireGuardDeviceDrops() -> [String: UInt64] { wireGuard?.deviceDrops() ?? [:] }

    public func setMTU(_ mtu: Int) { wireGuard?.setMTU(mtu) }

    public func setWireGuardPeers(_ peers: [WireGuardPeerSpec]) -> Bool {
        guard let wireGuard else { return false }
        wireGuard.setPeers(peers.map(DataPlaneWorkers.peer))
        return true
    }
}
extension CaptureHub: PacketTap {}
