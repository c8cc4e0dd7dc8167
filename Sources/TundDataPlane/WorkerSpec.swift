import NetAddress

/// What a device hands over: bare IP packets (tun, IFF_NO_PI) or Ethernet frames (tap).
public enum DeviceKind: Sendable, Equatable {
    case tun, tap
}

/// What one device's worker does with its packets, and where they come from.
public struct WorkerSpec: Sendable {
    public enum Mode: Sendable, Equatable {
        /// Read, classify and count; nothing more.
        case count
        /// Write every packet back into the device.
        case echo
        /// Answer ICMP/ICMPv6 echo requests, ARP requests and neighbour solicitations.
        case responder
        /// Carry every packet as one UDP datagram to `remote`, and write what `remote` sends into the device.
        case tunnel(local: SocketAddress, remote: SocketAddress)
        /// WireGuard: packets to a peer's allowed IPs go to it encrypted over UDP on `listenPort`; what
        /// peers send is authenticated, decrypted and written into the device. Tun devices only.
        case wireguard(WireGuardWorkerConfig)
    }

    /// The device's name: the worker's threads and errors say it.
    public var name: String
    public var kind: DeviceKind
    public var mode: Mode
    /// The device's queue descriptors (one per queue), owned by the caller; they must outlive `stop`.
    public var descriptors: [Int32]
    /// Every packet carries a virtio header (the device has offloads: TSO/USO super-packets, GRO).
    public var vnetHeader: Bool
    /// Receives a copy of what the worker reads while it is active (packet capture).
    public var tap: (any PacketTap)?
    /// Runs once, on a data-plane thread, when the worker stops by itself (a tunnel reading its own
    /// datagrams back: a routing loop). It must not stop the worker itself.
    public var onFailure: @Sendable (String) -> Void
    /// A wireguard worker's peer events, called on a data-plane thread: it must be quick and must not
    /// call back into the worker.
    public var onPeerEvent: @Sendable (WireGuardPeerEvent) -> Void

    public init(name: String, kind: DeviceKind, mode: Mode, descriptors: [Int32], vnetHeader: Bool = false,
                tap: (any PacketTap)? = nil, onFailure: @escaping @Sendable (String) -> Void = { _ in },
                onPeerEvent: @escaping @Sendable (WireGuardPeerEvent) -> Void = { _ in }) {
        self.onPeerEvent = onPeerEvent
        self.name = name
        self.kind = kind
        self.mode = mode
        self.descriptors = descriptors
        self.vnetHeader = vnetHeader
        self.tap = tap
        self.onFailure = onFailure
    }
}

/// Where copies of read packets go (capture). `isActive` is looked at once per batch, so a tap costs
/// nothing while no one captures.
public protocol PacketTap: Sendable {
    var isActive: Bool { get }
    func deliver(_ packet: UnsafeRawBufferPointer, at nanoseconds: UInt64)
}
