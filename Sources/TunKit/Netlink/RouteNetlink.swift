#if canImport(Glibc)
import Glibc
#endif
import NetAddress

/// Links, addresses and routes over rtnetlink: what `ip link`, `ip addr` and `ip route` do, without
/// spawning them. Every error is a `NetlinkError` with the kernel's errno and extended-ack text.
public final class RouteNetlink: Sendable {
    private let socket: NetlinkSocket

    public init() throws(SystemError) {
        socket = try NetlinkSocket()
    }

    /// `ip link show dev NAME`; nil when no such link exists (ENODEV).
    public func link(named name: String) throws(NetlinkError) -> LinkInfo? {
        do {
            return try socket.request(RouteRequests.getLink(name: name), operation: "RTM_GETLINK \(name)")
                .lazy.compactMap(RouteReplies.link).first
        } catch where error.errno == ENODEV {
            return nil
        }
    }

    /// `ip -s link show` of one ifindex, with IFLA_STATS64; nil when it no longer exists.
    public func link(index: Int32) throws(NetlinkError) -> LinkInfo? {
        do {
            return try socket.request(RouteRequests.getLink(index: index), operation: "RTM_GETLINK index \(index)")
                .lazy.compactMap(RouteReplies.link).first
        } catch where error.errno == ENODEV {
            return nil
        }
    }

    /// The kernel counters (IFLA_STATS_LINK_64) of one ifindex, by RTM_GETSTATS; nil when it no longer exists.
    public func statistics(index: Int32) throws(NetlinkError) -> LinkStatistics? {
        do {
            return try socket.request(RouteRequests.getStatistics(index: index), operation: "RTM_GETSTATS index \(index)")
                .lazy.compactMap(RouteReplies.statistics).first
        } catch where error.errno == ENODEV {
            return nil
        }
    }

    /// `ip link show`: every link of this network namespace.
    public func links() throws(NetlinkError) -> [LinkInfo] {
        try socket.request(RouteRequests.dumpLinks(), operation: "RTM_GETLINK dump").compactMap(RouteReplies.link)
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

    /// `ip addr show dev IFINDEX` (the kernel's dump, filtered here).
    public func addresses(index: Int32) throws(NetlinkError) -> [AddressInfo] {
        try socket.request(RouteRequests.dumpAddresses(), operation: "RTM_GETADDR dump")
            .compactMap(RouteReplies.address).filter { $0.interfaceIndex == index }
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
            return try socket.request(RouteRequests.lookupRoute(to: address), operation: "RTM_GETROUTE \(address)")
                .lazy.compactMap(RouteReplies.lookedUpInterface).first
        } catch where error.errno == ENETUNREACH || error.errno == EHOSTUNREACH {
            return nil
        }
    }

    /// `ip route show table main` for both families.
    public func routes() throws(NetlinkError) -> [RouteInfo] {
        var all: [RouteInfo] = []
        for family in [AddressFamily.ipv4, .ipv6] {
            all += try socket.request(RouteRequests.dumpRoutes(family: family), operation: "RTM_GETROUTE dump")
                .compactMap(RouteReplies.route)
        }
        return all
    }
}
