import NetAddress

/// What the kernel says about one link (RTM_NEWLINK reply).
public struct LinkInfo: Sendable, Equatable {
    public let index: Int32
    public let name: String
    /// `ifi_flags`: IFF_UP = 0x1, IFF_RUNNING = 0x40, IFF_LOWER_UP = 0x10000, ...
    public let flags: UInt32
    public let mtu: Int
    /// IF_OPER_* (RFC 2863): 0 unknown, 2 down, 6 up, ...
    public let operState: UInt8
    public let mac: MACAddress?
    public let alias: String?
    /// IFLA_INFO_KIND, "tun" for TUN and TAP devices.
    public let kind: String?
    public let tun: TunLinkInfo?
    public let statistics: LinkStatistics?
    /// IFLA_GROUP: 0 unless someone grouped the link (`ip link set group`).
    public var group: UInt32 = 0

    public var isUp: Bool { flags & 0x1 != 0 }

    /// Names of the set IFF_* flags, as `ip link` prints them.
    public var flagNames: [String] {
        let names: [(UInt32, String)] = [
            (0x1, "UP"), (0x2, "BROADCAST"), (0x8, "LOOPBACK"), (0x10, "POINTOPOINT"), (0x40, "RUNNING"),
            (0x80, "NOARP"), (0x100, "PROMISC"), (0x1000, "MULTICAST"), (0x10000, "LOWER_UP"), (0x20000, "DORMANT"),
        ]
        return names.filter { flags & $0.0 != 0 }.map(\.1)
    }

    /// IF_OPER_* as text, as `ip link` prints it.
    public var operStateName: String {
        switch operState {
        case 1: "notpresent"
        case 2: "down"
        case 3: "lowerlayerdown"
        case 4: "testing"
        case 5: "dormant"
        case 6: "up"
        default: "unknown"
        }
    }
}

/// IFLA_INFO_DATA of a tun link.
public struct TunLinkInfo: Sendable, Equatable {
    public let isTap: Bool
    public let multiQueue: Bool
    public let persistent: Bool
    public let owner: UInt32?
    public let group: UInt32?
}

/// `struct rtnl_link_stats64`: the kernel's own per-link counters (IFLA_STATS64). From the kernel's side:
/// `rx` is what the device received from its user (tund wrote), `tx` what it sent to the user (tund reads).
public struct LinkStatistics: Sendable, Equatable {
    public var rxPackets: UInt64 = 0, txPackets: UInt64 = 0, rxBytes: UInt64 = 0, txBytes: UInt64 = 0
    public var rxErrors: UInt64 = 0, txErrors: UInt64 = 0, rxDropped: UInt64 = 0, txDropped: UInt64 = 0
    public var multicast: UInt64 = 0, collisions: UInt64 = 0

    public init() {}

    init?(_ raw: ArraySlice<UInt8>) {
        guard raw.count >= 80 else { return nil }
        func field(_ index: Int) -> UInt64 { raw.readInteger(UInt64.self, at: raw.startIndex + index * 8) }
        rxPackets = field(0); txPackets = field(1); rxBytes = field(2); txBytes = field(3)
        rxErrors = field(4); txErrors = field(5); rxDropped = field(6); txDropped = field(7)
        multicast = field(8); collisions = field(9)
    }
}

/// One address as the kernel lists it (RTM_NEWADDR reply).
public struct AddressInfo: Sendable, Equatable {
    public let interfaceIndex: Int32
    public let prefix: IPPrefix
    /// IFA_PROTO: who added it (0 unset, 1-3 the kernel, others a program such as tund).
    public let `protocol`: UInt8
}

/// One route of the main table as the kernel lists it (RTM_NEWROUTE reply).
public struct RouteInfo: Sendable, Equatable {
    public let destination: IPPrefix
    public let gateway: IPAddress?
    public let outputInterface: Int32?
    public let metric: UInt32?
    public let `protocol`: UInt8
}

/// A route to add or delete: `ip route add DESTINATION [via GATEWAY] dev IFINDEX [metric METRIC] proto PROTOCOL`.
public struct RouteRequest: Sendable, Equatable {
    public let destination: IPPrefix
    public let gateway: IPAddress?
    public let interfaceIndex: Int32
    public let metric: UInt32?
    /// The route's `proto`: who installed it. tund uses its own number so `ip route` shows what is its.
    public let `protocol`: UInt8

    public init(destination: IPPrefix, gateway: IPAddress?, interfaceIndex: Int32, metric: UInt32?, protocol: UInt8) {
        self.destination = destination
        self.gateway = gateway
        self.interfaceIndex = interfaceIndex
        self.metric = metric
        self.protocol = `protocol`
    }
}

/// Changes to one link; nil fields are left as they are.
public struct LinkChange: Sendable, Equatable {
    public var up: Bool?
    public var mtu: Int?
    public var mac: MACAddress?
    public var alias: String?

    public init(up: Bool? = nil, mtu: Int? = nil, mac: MACAddress? = nil, alias: String? = nil) {
        self.up = up
        self.mtu = mtu
        self.mac = mac
        self.alias = alias
    }
}
