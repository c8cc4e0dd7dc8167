#if canImport(Glibc)
import Glibc
#endif
import NetAddress
import Synchronization

/// Links, addresses and routes over rtnetlink: what `ip link`, `ip addr` and `ip route` do, without
/// spawning them. Every error is a `NetlinkError` with the kernel's errno and extended-ack text.
public final class RouteNetlink: Sendable {
    /// Changes go through one socket, so the notices of tund's own changes carry one port id (`portID`).
    private let socket: NetlinkSocket
    /// Queries go through a few more, taken in turn: one socket is one request at a time, and the HTTP
    /// threads answering reads (a device's counters on every scrape) would otherwise queue on it.
    private let readers: [NetlinkSocket]
    private let nextReader = Atomic<Int>(0)

    /// The namespace its sockets talk to; nil for this process's own.
    public let namespace: NetworkNamespace?

    public init(readers count: Int = 4, in namespace: NetworkNamespace? = nil) throws(SystemError) {
        self.namespace = namespace
        socket = try NetlinkSocket(in: namespace)
        var readers: [NetlinkSocket] = []
        for _ in 0..<max(1, count) { readers.append(try NetlinkSocket(in: namespace)) }
        self.readers = readers
    }

    private var reader: NetlinkSocket {
        readers[nextReader.wrappingAdd(1, ordering: .relaxed).oldValue % readers.count]
    }

    /// `ip link show dev NAME`; nil when no such link exists (ENODEV).
    public func link(named name: String) throws(NetlinkError) -> LinkInfo? {
        do {
            return try reader.request(RouteRequests.getLink(name: name), operation: "RTM_GETLINK \(name)")
                .lazy.compactMap(RouteReplies.link).first
        } catch where error.errno == ENODEV {
            return nil
        }
    }

    /// `ip -s link show` of one ifindex, with IFLA_STATS64; nil when it no longer exists.
    public func link(index: Int32) throws(NetlinkError) -> LinkInfo? {
        do {
            return try reader.request(RouteRequests.getLink(index: index), operation: "RTM_GETLINK index \(index)")
                .lazy.compactMap(RouteReplies.link).first
        } catch where error.errno == ENODEV {
            return nil
        }
    }

    /// The kernel counters (IFLA_STATS_LINK_64) of one ifindex, by RTM_GETSTATS; nil when it no longer exists.
    public func statistics(index: Int32) throws(NetlinkError) -> LinkStatistics? {
        do {
            return try reader.request(RouteRequests.getStatistics(index: index), operation: "RTM_GETSTATS index \(index)")
                .lazy.compactMap(RouteReplies.statistics).first
        } catch where error.errno == ENODEV {
            return nil
        }
    }

    /// `ip link show`: every link of this network namespace.
    public func links() throws(NetlinkError) -> [LinkInfo] {
        try reader.request(RouteRequests.dumpLinks(), operation: "RTM_GETLINK dump").compactMap(RouteReplies.link)
    }

    /// `ip link set dev IFINDEX ...`.
    public func setLink(index: Int32, _ change: LinkChange) throws(NetlinkError) {
        _ = try socket.request(RouteRequests.setLink(index: index, change), operation: "RTM_NEWLINK index \(index)")
    }

    /// `ip link del dev IFINDEX`.
    public func deleteLink(index: Int32) throws(NetlinkError) {
        _ = try socket.request(RouteRequests.deleteLink(index: index), operation: "RTM_DELLINK index \(index)")
    }

    /// `ip addr add PREFIX dev IFINDEX proto P`, or `ip addr replace` when `replace`.
    public func addAddress(_ prefix: IPPrefix, index: Int32, replace: Bool = false, protocol: UInt8 = 0) throws(NetlinkError) {
        _ = try socket.request(RouteRequests.addAddress(prefix, index: index, replace: replace, protocol: `protocol`),
                               operation: "RTM_NEWADDR \(prefix) index \(index)")
    }

    /// `ip addr del PREFIX dev IFINDEX`.
    public func deleteAddress(_ prefix: IPPrefix, index: Int32) throws(NetlinkError) {
        _ = try socket.request(RouteRequests.deleteAddress(prefix, index: index), operation: "RTM_DELADDR \(prefix) index \(index)")
    }

    /// The port id of this object's socket: notices of the changes it made carry it.
    public var portID: UInt32 { socket.portID }

    /// `ip addr show dev IFINDEX`: filtered by the kernel (strict checking), else here.
    public func addresses(index: Int32) throws(NetlinkError) -> [AddressInfo] {
        try reader.request(RouteRequests.dumpAddresses(index: socket.strictChecking ? index : 0), operation: "RTM_GETADDR dev index \(index)")
            .compactMap(RouteReplies.address).filter { $0.interfaceIndex == index }
    }

    /// `ip addr show`: every address of this namespace.
    public func addresses() throws(NetlinkError) -> [AddressInfo] {
        try reader.request(RouteRequests.dumpAddresses(), operation: "RTM_GETADDR dump").compactMap(RouteReplies.address)
    }

    /// Many changes (link settings, addresses, routes, link deletions) sent pipelined: one result per
    /// request, nil for success. See `NetlinkSocket.requests`.
    public func perform(_ requests: [(builder: NetlinkMessageBuilder, operation: String)]) -> [NetlinkError?] {
        socket.requests(requests.map(\.builder)) { requests[$0].operation }
    }

    /// `ip link del group GROUP`.
    public func deleteGroup(_ group: UInt32) throws(NetlinkError) {
        _ = try socket.request(RouteRequests.deleteGroup(group), operation: "RTM_DELLINK group \(group)")
    }

    /// `ip route add ...`, or `ip route replace ...` when `replace`.
    public func addRoute(_ route: RouteRequest, replace: Bool = false) throws(NetlinkError) {
        _ = try socket.request(RouteRequests.addRoute(route, replace: replace), operation: "RTM_NEWROUTE \(route.destination)")
    }

    /// `ip route del ...`.
    public func deleteRoute(_ route: RouteRequest) throws(NetlinkError) {
        _ = try socket.request(RouteRequests.deleteRoute(route), operation: "RTM_DELROUTE \(route.destination)")
    }

    /// `ip route get ADDRESS`: the ifindex the kernel would send a packet for `address` out of; nil when
    /// it has no route (ENETUNREACH, EHOSTUNREACH) or the answer names no interface.
    public func outputInterface(to address: IPAddress) throws(NetlinkError) -> Int32? {
        do {
            return try reader.request(RouteRequests.lookupRoute(to: address), operation: "RTM_GETROUTE \(address)")
                .lazy.compactMap(RouteReplies.lookedUpInterface).first
        } catch where error.errno == ENETUNREACH || error.errno == EHOSTUNREACH {
            return nil
        }
    }

    /// `ip route show table main [proto P] [dev IFINDEX]` for both families. The kernel filters when it
    /// checks strictly; the same filter applies here either way. A link that is gone has no routes.
    public func routes(protocol: UInt8 = 0, index: Int32? = nil) throws(NetlinkError) -> [RouteInfo] {
        var all: [RouteInfo] = []
        let strict = socket.strictChecking
        for family in [AddressFamily.ipv4, .ipv6] {
            do {
                all += try reader.request(RouteRequests.dumpRoutes(family: family, protocol: strict ? `protocol` : 0, index: strict ? index : nil),
                                          operation: "RTM_GETROUTE dump")
                    .compactMap(RouteReplies.route)
            } catch where error.errno == ENODEV && index != nil {
                return []
            }
        }
        return all.filter { (`protocol` == 0 || $0.protocol == `protocol`) && (index == nil || $0.outputInterface == index) }
    }
}
