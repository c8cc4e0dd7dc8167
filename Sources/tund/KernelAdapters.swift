#if canImport(Glibc)
import Glibc
#endif
import Errno
import NetAddress
import TunKit
import TundCore

/// The `proto` number of every route and address tund installs, so `ip route` and `ip addr` (and tund's
/// own reconciliation) tell tund's from others'. 212 is unassigned in iproute2's rt_protos
/// (0-18, 42, 99, 186-192 are taken).
let tundProtocol: UInt8 = 212

/// TunKit behind the core's `LinkControl` port.
struct KernelLinkControl: LinkControl {
    let netlink: RouteNetlink
    /// This namespace's links' counters, read at most every 10 ms.
    let recentCounters = RecentCounters()

    func open(name: String?, kind: DeviceKind, queues: Int, exclusive: Bool, vnetHeader: Bool) throws(KernelError) -> any OpenDevice {
        do {
            return KernelOpenDevice(try TunDevice.open(name: name, kind: kind == .tun ? .tun : .tap, queues: queues,
                                                       exclusive: exclusive, vnetHeader: vnetHeader, in: netlink.namespace))
        } catch {
            throw KernelError(error)
        }
    }

    func link(named name: String) throws(KernelError) -> LinkState? {
        try mapped { () throws(NetlinkError) in try netlink.link(named: name).map(LinkState.init) }
    }

    func link(index: Int32) throws(KernelError) -> LinkState? {
        try mapped { () throws(NetlinkError) in try netlink.link(index: index).map(LinkState.init) }
    }

    func counters(index: Int32) throws(KernelError) -> KernelCounters? {
        try recentCounters.counters(index: index) { () throws(KernelError) in
            try mapped { () throws(NetlinkError) in try netlink.statistics(index: index).map(KernelCounters.init) }
        }
    }

    func links() throws(KernelError) -> [LinkState] {
        try mapped { () throws(NetlinkError) in try netlink.links().map(LinkState.init) }
    }

    func configure(index: Int32, _ settings: LinkSettings) throws(KernelError) {
        try mapped { () throws(NetlinkError) in
            try netlink.setLink(index: index, LinkChange(up: settings.up, mtu: settings.mtu, mac: settings.mac, alias: settings.alias))
        }
    }

    func deleteLink(index: Int32) throws(KernelError) {
        try mapped { () throws(NetlinkError) in try netlink.deleteLink(index: index) }
    }

    func addAddress(_ prefix: IPPrefix, index: Int32, replace: Bool) throws(KernelError) {
        try mapped { () throws(NetlinkError) in try netlink.addAddress(prefix, index: index, replace: replace, protocol: tundProtocol) }
    }

    func deleteAddress(_ prefix: IPPrefix, index: Int32) throws(KernelError) {
        try mapped { () throws(NetlinkError) in try netlink.deleteAddress(prefix, index: index) }
    }

    func addresses(index: Int32) throws(KernelError) -> [(prefix: IPPrefix, owned: Bool)] {
        try mapped { () throws(NetlinkError) in
            try netlink.addresses(index: index).map { ($0.prefix, $0.protocol == tundProtocol) }
        }
    }

    func addRoute(_ route: RouteSpec, index: Int32, replace: Bool) throws(KernelError) {
        try mapped { () throws(NetlinkError) in try netlink.addRoute(request(route, index), replace: replace) }
    }

    func deleteRoute(_ route: RouteSpec, index: Int32) throws(KernelError) {
        try mapped { () throws(NetlinkError) in try netlink.deleteRoute(request(route, index)) }
    }

    func setIPv6(enabled: Bool, name: String) throws(KernelError) {
        do { try IPv6Switch.set(enabled: enabled, link: name, in: netlink.namespace) } catch { throw KernelError(error) }
    }

    func ownedRoutes(index: Int32) throws(KernelError) -> [RouteSpec] {
        try mapped { () throws(NetlinkError) in try netlink.routes(protocol: tundProtocol, index: index).map(RouteSpec.init) }
    }

    func addressesByLink() throws(KernelError) -> [Int32: [(prefix: IPPrefix, owned: Bool)]] {
        try mapped { () throws(NetlinkError) in
            Dictionary(grouping: try netlink.addresses(), by: \.interfaceIndex).mapValues { $0.map { ($0.prefix, $0.protocol == tundProtocol) } }
        }
    }

    func perform(_ changes: [LinkChangeRequest]) -> [KernelError?] {
        let requests = changes.map { change -> (builder: NetlinkMessageBuilder, operation: String) in
            switch change {
            case .configure(let index, let settings):
                (RouteRequests.setLink(index: index, LinkChange(up: settings.up, mtu: settings.mtu, mac: settings.mac, alias: settings.alias)),
                 "RTM_NEWLINK index \(index)")
            case .addAddress(let prefix, let index, let replace):
                (RouteRequests.addAddress(prefix, index: index, replace: replace, protocol: tundProtocol), "RTM_NEWADDR \(prefix) index \(index)")
            case .addRoute(let route, let index, let replace):
                (RouteRequests.addRoute(request(route, index), replace: replace), "RTM_NEWROUTE \(route.destination) index \(index)")
            case .deleteAddress(let prefix, let index):
                (RouteRequests.deleteAddress(prefix, index: index), "RTM_DELADDR \(prefix) index \(index)")
            case .deleteRoute(let route, let index):
                (RouteRequests.deleteRoute(request(route, index)), "RTM_DELROUTE \(route.destination) index \(index)")
            }
        }
        return netlink.perform(requests).map { $0.map(KernelError.init) }
    }

    /// Puts the links in a group of their own and deletes the group: the kernel unregisters them together.
    /// The group number is drawn at random and checked unused, so no one else's link is in it.
    func deleteLinks(_ indexes: [Int32]) throws(KernelError) {
        guard indexes.count > 1 else {
            for index in indexes { try deleteLink(index: index) }
            return
        }
        try mapped { () throws(NetlinkError) in
            let used = Set(try netlink.links().map(\.group))
            var group: UInt32
            repeat { group = UInt32.random(in: 0x7475_0000...0x7475_ffff) } while used.contains(group)
            let failures = netlink.perform(indexes.map { (RouteRequests.setGroup(index: $0, group: group), "RTM_NEWLINK index \($0) group \(group)") })
            // A link that vanished meanwhile is simply not in the group.
            if let failure = failures.compactMap({ $0 }).first(where: { $0.errno != ENODEV }) { throw failure }
            try netlink.deleteGroup(group)
        }
    }

    func outputInterface(to address: IPAddress) throws(KernelError) -> Int32? {
        try mapped { () throws(NetlinkError) in try netlink.outputInterface(to: address) }
    }

    func ownedRoutesByLink() throws(KernelError) -> [Int32: [RouteSpec]] {
        try mapped { () throws(NetlinkError) in
            Dictionary(grouping: try netlink.routes(protocol: tundProtocol).filter { $0.outputInterface != nil }) { $0.outputInterface! }
                .mapValues { $0.map(RouteSpec.init) }
        }
    }

    private func request(_ route: RouteSpec, _ index: Int32) -> RouteRequest {
        RouteRequest(destination: route.destination, gateway: route.gateway, interfaceIndex: index,
                     metric: route.metric, protocol: tundProtocol)
    }

    private func mapped<T>(_ body: () throws(NetlinkError) -> T) throws(KernelError) -> T {
        do { return try body() } catch { throw KernelError(error) }
    }
}

/// A `TunDevice` as the core's `OpenDevice`.
final class KernelOpenDevice: OpenDevice {
    let device: TunDevice

    init(_ device: TunDevice) { self.device = device }

    var name: String { device.name }
    var queueDescriptors: [Int32] { device.queueDescriptors }

    func setPersistent(_ persistent: Bool) throws(KernelError) {
        do { try device.setPersistent(persistent) } catch { throw KernelError(error) }
    }

    func setOwner(_ uid: Int64) throws(KernelError) {
        do { try device.setOwner(uid) } catch { throw KernelError(error) }
    }

    func setGroup(_ gid: Int64) throws(KernelError) {
        do { try device.setGroup(gid) } catch { throw KernelError(error) }
    }

    func close() { device.close() }

    func enableOffloads() -> [String] { device.enableOffloads().names }
}

extension KernelError {
    init(_ error: SystemError) {
        self.init(operation: error.function, errno: Errno(error.errno))
    }

    init(_ error: NetlinkError) {
        self.init(operation: error.operation, errno: Errno(error.errno), kernelMessage: error.kernelMessage)
    }
}

extension LinkState {
    init(_ link: LinkInfo) {
        self.init(
            index: link.index, name: link.name, mtu: link.mtu, up: link.isUp, operState: link.operStateName,
            flags: link.flagNames, mac: link.mac, alias: link.alias, isTunTap: link.kind == "tun",
            multiQueue: link.tun?.multiQueue ?? false,
            counters: link.statistics.map(KernelCounters.init))
    }
}

extension KernelCounters {
    init(_ stats: LinkStatistics) {
        self.init(
            rxPackets: stats.rxPackets, txPackets: stats.txPackets, rxBytes: stats.rxBytes, txBytes: stats.txBytes,
            rxErrors: stats.rxErrors, txErrors: stats.txErrors, rxDropped: stats.rxDropped, txDropped: stats.txDropped,
            multicast: stats.multicast, collisions: stats.collisions)
    }
}

extension RouteSpec {
    init(_ route: RouteInfo) {
        self.init(destination: route.destination, gateway: route.gateway, metric: route.metric)
    }
}

/// TunKit's `NetlinkMonitor` as the core's source of kernel notices. Notices of the changes tund's own
/// netlink socket made (`ownPort`) are not passed on: they are not drift, and reconciling after each of
/// them would make every change cost a read of the device it just wrote.
final class KernelNoticeSource: KernelNotices {
    let monitor: NetlinkMonitor
    let ownPort: UInt32

    init(ignoringChangesBy ownPort: UInt32, in namespace: NetworkNamespace? = nil) throws(KernelError) {
        self.ownPort = ownPort
        do { monitor = try NetlinkMonitor(in: namespace) } catch { throw KernelError(error) }
    }

    func start(_ handler: @escaping @Sendable (KernelNotice) -> Void) throws(KernelError) {
        do {
            try monitor.start(ignoring: ownPort) { notice in
                switch notice {
                case .link(let link, let deleted):
                    handler(.link(name: link.name, index: link.index, up: link.isUp, deleted: deleted))
                case .address(let address, _):
                    handler(.address(index: address.interfaceIndex))
                case .route(let route, _):
                    // Only tund's routes can be drift; the kernel's own (an IPv6 link's fe80::/64) and
                    // others' are not its business, and reading a link's routes walks the whole table.
                    if route.protocol == tundProtocol { handler(.route(index: route.outputInterface)) }
                case .overflow:
                    handler(.overflow)
                }
            }
        } catch {
            throw KernelError(error)
        }
    }

    func stop() { monitor.stop() }
}

/// Other network namespaces for the core: each opened once, with its own netlink sockets and monitor
/// (made inside it, so they talk to its stack) and tun descriptors opened there.
struct KernelNamespaceOpener: NamespaceOpener {
    func check(_ reference: String) throws(KernelError) {
        do { _ = try NetworkNamespace(reference) } catch { throw KernelError(error) }
    }

    func open(_ reference: String) throws(KernelError) -> NamespaceKernel {
        do {
            let namespace = try NetworkNamespace(reference)
            // One reader: the many-socket spread is for the home namespace's scrape load.
            let netlink = try RouteNetlink(readers: 1, in: namespace)
            return NamespaceKernel(links: KernelLinkControl(netlink: netlink),
                                   notices: try KernelNoticeSource(ignoringChangesBy: netlink.portID, in: namespace),
                                   isPresent: { namespace.isStillThere })
        } catch let error as SystemError {
            throw KernelError(error)
        } catch let error as KernelError {
            throw error
        } catch {
            throw KernelError(operation: "open network namespace \(reference)", errno: .EIO)
        }
    }
}
