#if canImport(Glibc)
import Glibc
#endif
import BackgroundThread
import CLinux
import Synchronization

/// What changed in the kernel, as a notification names it: `ip monitor link address route`.
public enum NetlinkNotice: Sendable, Equatable {
    /// RTM_NEWLINK (`deleted` false) or RTM_DELLINK (true), with the link's state after the change.
    case link(LinkInfo, deleted: Bool)
    case address(AddressInfo, deleted: Bool)
    case route(RouteInfo, deleted: Bool)
    /// The socket's buffer overflowed (ENOBUFS): notices were lost, so any view built from them is stale.
    case overflow
}

/// Listens to the link, IPv4/IPv6 address and IPv4/IPv6 route multicast groups on its own NETLINK_ROUTE
/// socket and thread, and hands each notice to `handler`. Equivalent to `ip monitor link address route`.
public final class NetlinkMonitor: Sendable {
    private let fd: Int32
    private let thread = Mutex<BackgroundThread?>(nil)

    /// `namespace`: whose changes it hears; nil for this process's own.
    public init(in namespace: NetworkNamespace? = nil) throws(SystemError) {
        let type = Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        fd = try NetworkNamespace.socket(domain: AF_NETLINK, type: type, protocol: NETLINK_ROUTE, in: namespace)
        do {
            // A burst (hundreds of devices changing at once) should fit; past it, ENOBUFS and a resync.
            var size: Int32 = 4 << 20
            _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, 4)
            var address = sockaddr_nl()
            address.nl_family = sa_family_t(AF_NETLINK)
            address.nl_groups = UInt32(RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE)
            try syscall("bind(AF_NETLINK groups)") {
                withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_nl>.size)) }
                }
            }
        } catch {
            close(fd)
            throw error
        }
    }

    /// Starts the listening thread. `handler` runs on it, one notice at a time.
    ///
    /// `ignoring`: the port id of a socket whose own changes are not news (the kernel stamps the
    /// notification of an address or route change with the port id of the socket that asked for it), so a
    /// program does not react to what it did itself.
    public func start(ignoring portID: UInt32? = nil, _ handler: @escaping @Sendable (NetlinkNotice) -> Void) throws(SystemError) {
        let fd = fd
        do {
            let started = try BackgroundThread(name: "tund:netlink") { thread in Self.listen(fd, thread, ignoring: portID, handler) }
            thread.withLock { $0 = started }
        } catch {
            throw SystemError("starting the netlink listener thread", errno: error.rawValue)
        }
    }

    /// Stops the thread and waits for it. Idempotent.
    public func stop() {
        thread.withLock { thread in defer { thread = nil }; return thread }?.stop()
    }

    deinit {
        stop()
        close(fd)
    }

    private static func listen(_ fd: Int32, _ thread: BackgroundThread, ignoring portID: UInt32?, _ handler: @Sendable (NetlinkNotice) -> Void) {
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        while !thread.isStopping {
            guard let (events, _) = thread.waitFor([(fd, Int16(POLLIN))]), events[0] != 0 else { continue }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count < 0 {
                if errno == ENOBUFS { handler(.overflow) }
                continue
            }
            guard let messages = try? NetlinkMessage.parse(buffer[0..<count]) else { continue }
            for message in messages where portID == nil || message.portID != portID {
                if let notice = Self.notice(message) { handler(notice) }
            }
        }
    }

    static func notice(_ message: NetlinkMessage) -> NetlinkNotice? {
        switch message.type {
        case RouteMessage.newLink, RouteMessage.delLink:
            return RouteReplies.link(NetlinkMessage(type: RouteMessage.newLink, flags: message.flags, sequence: message.sequence,
                                                    portID: message.portID, payload: message.payload))
                .map { .link($0, deleted: message.type == RouteMessage.delLink) }
        case RouteMessage.newAddress, RouteMessage.delAddress:
            return RouteReplies.address(NetlinkMessage(type: RouteMessage.newAddress, flags: message.flags, sequence: message.sequence,
                                                       portID: message.portID, payload: message.payload))
                .map { .address($0, deleted: message.type == RouteMessage.delAddress) }
        case RouteMessage.newRoute, RouteMessage.delRoute:
            return RouteReplies.route(NetlinkMessage(type: RouteMessage.newRoute, flags: message.flags, sequence: message.sequence,
                                                     portID: message.portID, payload: message.payload))
                .map { .route($0, deleted: message.type == RouteMessage.delRoute) }
        default:
            return nil
        }
    }
}
