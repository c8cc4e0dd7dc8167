import NetAddress

public enum DeviceKind: String, Sendable, CaseIterable {
    /// Layer 3: IP packets, no MAC.
    case tun
    /// Layer 2: Ethernet frames, with a MAC.
    case tap
}

/// What a packet worker does with what it reads. Every mode classifies and counts.
public enum WorkerMode: String, Sendable, CaseIterable {
    /// Read, classify, count, discard.
    case count
    /// Write every packet back into the device unchanged.
    case echo
    /// Answer ICMP/ICMPv6 echo requests (and ARP / neighbour solicitations on TAP): `ping` across the
    /// device gets replies.
    case responder
    /// Carry every packet or frame in a UDP datagram to a peer, and write what the peer sends into the device.
    case tunnel
    /// WireGuard: every packet encrypted to the peer whose allowed IPs hold its destination (tun only).
    case wireguard
    /// No worker: tund makes and keeps the device (persistent, owned, configured, repaired, restored) and
    /// holds none of its queues, so its owner (a VMM, a VPN client) attaches with TUNSETIFF.
    case none

    /// Whether tund holds the device's queue descriptors with a worker on them.
    public var attachesWorker: Bool { self != .none }
}

/// The UDP endpoints of a `tunnel` worker: `local` to bind, `remote` the peer. Datagrams from any other
/// source are dropped and counted.
public struct TunnelSpec: Equatable, Sendable {
    public var local: SocketAddress
    public var remote: SocketAddress

    public init(local: SocketAddress, remote: SocketAddress) {
        self.local = local
        self.remote = remote
    }
}

/// What tund does when someone else changes one of its devices.
public enum DriftPolicy: String, Sendable, CaseIterable {
    /// Put the device back as stored (the default).
    case repair
    /// Record and announce the drift, change nothing.
    case report
}

/// A route through a device: `ip route add DESTINATION [via GATEWAY] dev DEVICE [metric METRIC]`.
public struct RouteSpec: Equatable, Sendable {
    /// A network prefix, host bits clear (`10.20.0.0/16`).
    public var destination: IPPrefix
    public var gateway: IPAddress?
    /// nil: the kernel's default (0 for IPv4, 1024 for IPv6). An IPv6 metric of 0 is stored as 1024,
    /// which is what the kernel makes of it: kept as 0, the route would never match the kernel's and be
    /// "repaired" forever.
    public var metric: UInt32?

    public init(destination: IPPrefix, gateway: IPAddress? = nil, metric: UInt32? = nil) {
        self.destination = destination
        self.gateway = gateway
        self.metric = destination.family == .ipv6 && metric == 0 ? Self.ipv6DefaultMetric : metric
    }

    static let ipv6DefaultMetric: UInt32 = 1024

    /// The metric as the kernel holds it: the family's default when none was given.
    public var kernelMetric: UInt32 { metric ?? (destination.family == .ipv4 ? 0 : Self.ipv6DefaultMetric) }

    /// The kernel keys a route by destination and metric (table and family aside); the gateway is its
    /// content. Compared in the kernel's normalized form.
    public func sameRoute(as other: RouteSpec) -> Bool {
        destination == other.destination && gateway == other.gateway && kernelMetric == other.kernelMetric
    }
}

extension RouteSpec {
    /// Checks the route on its own: a destination without host bits, a gateway of the same family that
    /// can be a next hop. `fieldPrefix` names where the route sits in the request ("routes[0]." or "").
    public func validate(fieldPrefix: String) throws(TundError) {
        guard destination.isNetwork else {
            throw .invalidField(field: "\(fieldPrefix)destination",
                                reason: "\(destination) has host bits set; did you mean \(destination.network)?")
        }
        if let gateway {
            guard gateway.family == destination.family else {
                throw .invalidField(field: "\(fieldPrefix)gateway", reason: "\(gateway) is not of the destination's address family")
            }
            if let reason = gateway.unusableAsInterfaceAddressReason {
                throw .invalidField(field: "\(fieldPrefix)gateway", reason: "\(gateway) is \(reason)")
            }
        }
    }
}

/// The desired configuration of one device, as a client asks for it.
public struct DeviceSpec: Equatable, Sendable {
    /// The device's name in the API (unique in tund). nil: the kernel picks `tunN` / `tapN` at creation.
    public var name: String?
    /// Its name in the kernel when that differs from `name` (two containers may both have an `eth0`).
    public var ifname: String?
    /// The network namespace it lives in: a name under /run/netns or an absolute path to a namespace
    /// file; nil for tund's own namespace.
    public var netns: String?
    public var kind: DeviceKind
    public var mtu: Int
    public var up: Bool
    public var owner: Int64?
    public var group: Int64?
    public var queues: Int
    /// tap only; nil: the kernel picks a random local address (which tund then keeps).
    public var mac: MACAddress?
    public var addresses: [IPPrefix]
    public var routes: [RouteSpec]
    public var workerMode: WorkerMode
    /// Offloads: the device hands over TCP/UDP super-packets and takes merged ones (IFF_VNET_HDR with
    /// TUNSETOFFLOAD), and the worker splits and merges them. TUN devices only, set at creation.
    public var offload: Bool
    /// Set exactly when `workerMode` is `.tunnel`.
    public var tunnel: TunnelSpec?
    /// Set exactly when `workerMode` is `.wireguard`.
    public var wireguard: WireGuardSpec?
    public var policy: DriftPolicy

    public static let defaultMTU = 1500
    /// A wireguard device's MTU when the request names none. 1408 leaves room for WireGuard's 32 bytes
    /// and UDP over IPv6 (48) on a 1500-byte underlay, like wg-quick's 1420, and a full-sized packet is
    /// then a whole number of 64-byte ChaCha20 blocks: OpenSSL's AEAD spends a separate block call on a
    /// partial last block: a 1,420-byte seal takes 740-760 ns, a 1,408-byte one 615 (Benchmarks/README.md).
    public static let defaultWireGuardMTU = 1408
    /// The MTU a new device gets when the request names none.
    public static func defaultMTU(for mode: WorkerMode) -> Int {
        mode == .wireguard ? defaultWireGuardMTU : defaultMTU
    }
    public static let mtuRange = 68...65535
    /// The kernel's own maximum per type: a tap's frames carry a 14-byte Ethernet header within the
    /// 65535 bytes (tun.c: max_mtu = MAX_MTU - hard_header_len), so 65535 on a tap is EINVAL.
    public static func maximumMTU(_ kind: DeviceKind) -> Int { kind == .tap ? 65535 - 14 : 65535 }
    /// IPv6 needs links of at least 1280 bytes (RFC 8200); the kernel disables IPv6 below that.
    public static let ipv6MinimumMTU = 1280
    public static let queueRange = 1...64
    public static let maximumAddresses = 256
    public static let maximumRoutes = 1024

    public init(name: String? = nil, kind: DeviceKind, mtu: Int = DeviceSpec.defaultMTU, up: Bool = true,
                owner: Int64? = nil, group: Int64? = nil, queues: Int = 1, mac: MACAddress? = nil,
                addresses: [IPPrefix] = [], routes: [RouteSpec] = [], workerMode: WorkerMode = .count,
                tunnel: TunnelSpec? = nil, offload: Bool = false, policy: DriftPolicy = .repair) {
        self.name = name
        self.kind = kind
        self.mtu = mtu
        self.up = up
        self.owner = owner
        self.group = group
        self.queues = queues
        self.mac = mac
        self.addresses = addresses
        self.routes = routes
        self.workerMode = workerMode
        self.tunnel = tunnel
        self.offload = offload
        self.policy = policy
    }

    /// The link's name in its namespace.
    public var kernelName: String? { ifname ?? name }

    /// Whether the device needs IPv6 on: it has an IPv6 address or route. Without either, tund keeps IPv6
    /// off on the link (no link-local address, no IPv6 routes of its own; see TunKit's IPv6Switch).
    public var usesIPv6: Bool {
        addresses.contains { $0.family == .ipv6 } || routes.contains { $0.destination.family == .ipv6 }
    }

    /// Checks everything that can be known without the kernel; throws the first problem, naming the field.
    public func validate() throws(TundError) {
        if let ifname {
            try Self.validateName(ifname, field: "ifname")
            guard let name else { throw .invalidField(field: "name", reason: "a device with an ifname needs a name of its own") }
            try Self.validateAPIName(name)
        } else if let name {
            try Self.validateName(name)
        }
        if let netns { try Self.validateNamespace(netns) }
        guard Self.mtuRange.lowerBound...Self.maximumMTU(kind) ~= mtu else {
            throw .invalidField(field: "mtu", reason: "must be between \(Self.mtuRange.lowerBound) and \(Self.maximumMTU(kind)) for a \(kind.rawValue) device, got \(mtu)")
        }
        guard Self.queueRange.contains(queues) else {
            throw .invalidField(field: "queues", reason: "must be between \(Self.queueRange.lowerBound) and \(Self.queueRange.upperBound), got \(queues)")
        }
        for (field, id) in [("owner", owner), ("group", group)] {
            if let id, !(0..<4_294_967_295).contains(id) {
                throw .invalidField(field: field, reason: "must be a numeric id between 0 and 4294967294, got \(id)")
            }
        }
        if let mac {
            guard kind == .tap else { throw .invalidField(field: "mac", reason: "only tap devices have a MAC address") }
            guard !mac.isMulticast, !mac.isZero else {
                throw .invalidField(field: "mac", reason: "\(mac) is a multicast or all-zero address, not a device address")
            }
        }
        try validateAddresses()
        try validateRoutes()
        try validateWorker()
        if offload && kind != .tun {
            throw .invalidField(field: "offload", reason: "offloads are implemented for tun devices only")
        }
        if offload && workerMode == .none {
            throw .invalidField(field: "offload", reason: "a device handed to its owner (mode \"none\") takes the owner's own TUNSETIFF flags; tund has no reader to offload for")
        }
    }

    private func validateWorker() throws(TundError) {
        switch (workerMode, tunnel) {
        case (.tunnel, nil):
            throw .invalidField(field: "worker.remote", reason: "a tunnel needs \"local\" and \"remote\" addresses (IP:PORT)")
        case (.tunnel, let tunnel?):
            guard tunnel.local.address.family == tunnel.remote.address.family else {
                throw .invalidField(field: "worker.remote", reason: "\(tunnel.remote) is not of the local address's family")
            }
            // Loopback peers are allowed: two tunnels in one host (or one namespace) can talk over it.
            if let reason = tunnel.remote.address.unusableAsInterfaceAddressReason, !reason.contains("loopback") {
                throw .invalidField(field: "worker.remote", reason: "\(tunnel.remote.address) is \(reason)")
            }
            // Whether the tunnel's own datagrams would be routed into the tunnel is the kernel's answer,
            // asked once the device is configured (DeviceManager.checkTunnelPath), not a guess from here.
        case (_, .some):
            throw .invalidField(field: "worker.local", reason: "only the tunnel mode takes local and remote addresses")
        default:
            break
        }
        switch (workerMode, wireguard) {
        case (.wireguard, nil):
            throw .invalidField(field: "worker.listen_port", reason: "a wireguard worker needs a listen_port")
        case (.wireguard, let wireguard?):
            guard kind == .tun else { throw .invalidField(field: "worker.mode", reason: "wireguard carries IP packets: tun devices only") }
            try wireguard.validate()
        case (_, .some):
            throw .invalidField(field: "worker.peers", reason: "only the wireguard mode takes keys and peers")
        default:
            break
        }
    }

    /// A Linux interface name: 1 to 15 bytes (IFNAMSIZ - 1), and here only letters, digits, `_`, `-`
    /// and `.`: no `/`, `:`, `%`, space or control characters, not `.` or `..`.
    public static func validateName(_ name: String, field: String = "name") throws(TundError) {
        try validateName(name, field: field, maximum: 15, limit: "IFNAMSIZ - 1")
    }

    /// A name in the API only (the link is called `ifname`): the same characters, up to 63 bytes.
    public static func validateAPIName(_ name: String) throws(TundError) {
        try validateName(name, field: "name", maximum: 63, limit: "the limit for a device with an ifname")
    }

    private static func validateName(_ name: String, field: String, maximum: Int, limit: String) throws(TundError) {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty else { throw .invalidField(field: field, reason: "must not be empty") }
        guard bytes.count <= maximum else {
            throw .invalidField(field: field, reason: "must be at most \(maximum) bytes (\(limit)), got \(bytes.count)")
        }
        guard bytes.allSatisfy(isNameByte) else {
            throw .invalidField(field: field, reason: "may contain only ASCII letters, digits, '_', '-' and '.'")
        }
        guard name != ".", name != ".." else { throw .invalidField(field: field, reason: "must not be '.' or '..'") }
    }

    private static func isNameByte(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x41...0x5a).contains(byte) || (0x61...0x7a).contains(byte)
            || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
    }

    /// One text per namespace, for telling namespaces apart: `foo`, `/run/netns/foo` and
    /// `/var/run/netns/foo` are the same file, and two managers on one namespace would each delete the
    /// other's devices as orphans. nil (tund's own) stays nil. Devices keep the text they were given.
    public static func namespaceKey(_ netns: String?) -> String? {
        guard let netns else { return nil }
        if !netns.hasPrefix("/") { return "/run/netns/" + netns }
        if netns.hasPrefix("/var/run/netns/") { return String(netns.dropFirst("/var".count)) }
        return netns
    }

    /// `ip netns` names (a file under /run/netns) or absolute paths as container runtimes pass them.
    public static func validateNamespace(_ netns: String) throws(TundError) {
        let bytes = Array(netns.utf8)
        guard !bytes.isEmpty, bytes.count <= 4096 else {
            throw .invalidField(field: "netns", reason: "must be a namespace name or an absolute path of at most 4096 bytes")
        }
        if bytes.first == UInt8(ascii: "/") {
            guard !bytes.contains(0), !netns.split(separator: "/").contains("..") else {
                throw .invalidField(field: "netns", reason: "a namespace path must not contain NUL or '..'")
            }
        } else {
            guard bytes.count <= 255, bytes.allSatisfy(isNameByte), netns != ".", netns != ".." else {
                throw .invalidField(field: "netns", reason: "a namespace name (under /run/netns) may contain only ASCII letters, digits, '_', '-' and '.'; give other namespaces as absolute paths")
            }
        }
    }

    private func validateAddresses() throws(TundError) {
        guard addresses.count <= Self.maximumAddresses else {
            throw .invalidField(field: "addresses", reason: "at most \(Self.maximumAddresses) addresses")
        }
        var seen = Set<IPAddress>()
        for (index, prefix) in addresses.enumerated() {
            let field = "addresses[\(index)]"
            if let reason = prefix.address.unusableAsInterfaceAddressReason {
                throw .invalidField(field: field, reason: "\(prefix.address) is \(reason)")
            }
            guard seen.insert(prefix.address).inserted else {
                throw .invalidField(field: field, reason: "\(prefix.address) is listed twice")
            }
            if prefix.family == .ipv6 && mtu < Self.ipv6MinimumMTU {
                throw .invalidField(field: field, reason: "IPv6 needs an MTU of at least \(Self.ipv6MinimumMTU); mtu is \(mtu)")
            }
        }
    }

    private func validateRoutes() throws(TundError) {
        guard routes.count <= Self.maximumRoutes else {
            throw .invalidField(field: "routes", reason: "at most \(Self.maximumRoutes) routes")
        }
        var seen = Set<String>()
        for (index, route) in routes.enumerated() {
            let field = "routes[\(index)]"
            try route.validate(fieldPrefix: "\(field).")
            guard seen.insert("\(route.destination) \(route.kernelMetric)").inserted else {
                throw .invalidField(field: field, reason: "route to \(route.destination) is listed twice")
            }
        }
    }
}
