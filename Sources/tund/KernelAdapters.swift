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

    func open(name: String?, kind: DeviceKind, queues: Int, exclusive: Bool, vnetHeader: Bool) throws(KernelError) -> any OpenDevice {
        do {
            return KernelOpenDevice(try TunDevice.open(name: name, kind: kind == .tun ? .tun : .tap, queues: queues,
                                                       exclusive: exclusive, vnetHeader: vnetHeader))
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
        try mapped { () throws(NetlinkError) in try netlink.statistics(index: index).map(KernelCounters.init) }
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

    func ownedRoutes(index: Int32) throws(KernelError) -> [RouteSpec] {
        try ownedRoutesByLink()[index] ?? []
    }

    func outputInterface(to address: IPAddress) throws(KernelError) -> Int32? {
        try mapped { () throws(NetlinkError) in try netlink.outputInterface(to: address) }
    }

    func ownedRoutesByLink() throws(KernelError) -> [Int32: [RouteSpec]] {
        try mapped { () throws(NetlinkError) in
            Dictionary(grouping: try netlink.routes().filter { $0.protocol == tundProtocol && $0.outputInterface != nil }) { $0.outputInterface! }
                .mapValues { $0.map { RouteSpec(destination: $0.destination, gateway: $0.gateway, metric: $0.metric) } }
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

/// TunKit's `NetlinkMonitor` as the core's source of kernel notices.
final class KernelNoticeSource: KernelNotices {
    let monitor: NetlinkMonitor

    init() throws(KernelError) {
        do { monitor = try NetlinkMonitor() } catch { throw KernelError(error) }
    }

    func start(_ handler: @escaping @Sendable (KernelNotice) -> Void) throws(KernelError) {
        do {
            try monitor.start { notice in
                switch notice {
                case .link(let link, let deleted):
                    handler(.link(name: link.name, index: link.index, up: link.isUp, deleted: deleted))
                case .address(let address, _):
                    handler(.address(index: address.interfaceIndex))
                case .route(let route, _):
                    handler(.route(index: route.outputInterface))
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
