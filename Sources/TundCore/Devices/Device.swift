import NetAddress

/// A stored route: its spec and the id the store gave it.
public struct DeviceRoute: Equatable, Sendable {
    public var id: Int64
    public var spec: RouteSpec

    public init(id: Int64, spec: RouteSpec) {
        self.id = id
        self.spec = spec
    }
}

/// A device tund manages, as stored: the spec with its final name, MAC and ids.
public struct DeviceRecord: Equatable, Sendable {
    public var id: Int64?
    public var name: String
    /// The desired state. `spec.routes` and `routes` list the same routes; `routes` adds their ids.
    public var spec: DeviceSpec
    public var routes: [DeviceRoute]
    /// Bumped by every change; the device's ETag.
    public var generation: Int64
    public var createdAt: String
    public var updatedAt: String

    /// The link's name in its namespace: `spec.ifname`, else the device's name.
    public var kernelName: String { spec.ifname ?? name }

    public init(id: Int64? = nil, name: String, spec: DeviceSpec, routes: [DeviceRoute] = [], generation: Int64 = 1,
                createdAt: String, updatedAt: String) {
        self.id = id
        self.name = name
        self.spec = spec
        self.routes = routes
        self.generation = generation
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// What one look at a device found different from its stored state, and whether tund put it back.
public struct DriftReport: Equatable, Sendable {
    public var at: String
    /// One line per difference: "link deleted", "mtu 1400 -> 1500", "address 10.0.0.1/24 missing", ...
    public var findings: [String]
    public var repaired: Bool
    /// Why a repair failed, if it did.
    public var error: String?
}

/// What the kernel says about a link right now.
public struct LinkState: Equatable, Sendable {
    public var index: Int32
    public var name: String
    public var mtu: Int
    public var up: Bool
    /// RFC 2863 operational state as `ip` prints it: "up", "down", "unknown", ...
    public var operState: String
    /// IFF_* flag names: "UP", "POINTOPOINT", "NOARP", ...
    public var flags: [String]
    public var mac: MACAddress?
    /// The link alias (IFLA_IFALIAS): how tund marks the links it owns.
    public var alias: String?
    /// true for TUN/TAP links (IFLA_INFO_KIND "tun").
    public var isTunTap: Bool
    public var multiQueue: Bool
    public var counters: KernelCounters?

    public init(index: Int32, name: String, mtu: Int, up: Bool, operState: String, flags: [String], mac: MACAddress?,
                alias: String?, isTunTap: Bool, multiQueue: Bool, counters: KernelCounters?) {
        self.index = index
        self.name = name
        self.mtu = mtu
        self.up = up
        self.operState = operState
        self.flags = flags
        self.mac = mac
        self.alias = alias
        self.isTunTap = isTunTap
        self.multiQueue = multiQueue
        self.counters = counters
    }
}

/// The kernel's own link counters (IFLA_STATS64), named from the kernel's side: `tx` is what the device
/// handed to tund's worker, `rx` what the worker wrote into it.
public struct KernelCounters: Equatable, Sendable {
    public var rxPackets: UInt64, txPackets: UInt64, rxBytes: UInt64, txBytes: UInt64
    public var rxErrors: UInt64, txErrors: UInt64, rxDropped: UInt64, txDropped: UInt64
    public var multicast: UInt64, collisions: UInt64

    public init(rxPackets: UInt64, txPackets: UInt64, rxBytes: UInt64, txBytes: UInt64, rxErrors: UInt64, txErrors: UInt64,
                rxDropped: UInt64, txDropped: UInt64, multicast: UInt64, collisions: UInt64) {
        self.rxPackets = rxPackets
        self.txPackets = txPackets
        self.rxBytes = rxBytes
        self.txBytes = txBytes
        self.rxErrors = rxErrors
        self.txErrors = txErrors
        self.rxDropped = rxDropped
        self.txDropped = txDropped
        self.multicast = multicast
        self.collisions = collisions
    }

    /// The counters' names as the API shows them, in the order of `forEachValue`.
    public static let names = ["rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "rx_errors", "tx_errors",
                               "rx_dropped", "tx_dropped", "multicast", "collisions"]

    /// `body(i, value)` for each counter, in the order of `names`.
    public func forEachValue(_ body: (Int, UInt64) -> Void) {
        body(0, rxPackets); body(1, txPackets); body(2, rxBytes); body(3, txBytes); body(4, rxErrors)
        body(5, txErrors); body(6, rxDropped); body(7, txDropped); body(8, multicast); body(9, collisions)
    }
}

/// A device as the API shows it: the stored config and what the kernel and the worker say now.
public struct DeviceSnapshot: Equatable, Sendable {
    public var record: DeviceRecord
    /// nil when the link is missing (restore failed, or removed behind tund's back).
    public var link: LinkState?
    public var workerRunning: Bool
    /// Why the last restore of this device failed, if it did.
    public var restoreError: String?
    public var lastDrift: DriftReport?
    public var driftDetected: Int
    public var driftRepaired: Int
    /// Offloads the kernel granted the device ("csum", "tso4", "tso6", "uso4", "uso6").
    public var offloads: [String]
    /// The stored routes the kernel holds now. A link that is down holds none: its routes wait in the
    /// store and go back when it comes up.
    public var activeRouteIDs: Set<Int64> = []
    /// The addresses on the link as the kernel holds them now (any owner's); nil while it is absent.
    public var liveAddresses: [IPPrefix]?
    /// Why the link is absent, when tund knows: "namespace_missing".
    public var absentReason: String?
}

/// `GET /devices/{name}/stats`: the worker's counters and the kernel's, side by side.
public struct DeviceStatistics: Equatable, Sendable {
    public var name: String
    public var worker: WorkerCounters
    public var kernel: KernelCounters?
    /// Changes by others that tund saw, and how many it put back.
    public var driftDetected: Int
    public var driftRepaired: Int
    /// A wireguard worker's peers, as the worker sees them now.
    public var peers: [WireGuardPeerStatus] = []
    /// A wireguard worker's drops that no peer can be charged with, by reason.
    public var wireguardDrops: [String: UInt64] = [:]
}
