#if canImport(Glibc)
import Glibc
#endif
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
    private let stopPipe: (read: Int32, write: Int32)
    private let thread = Mutex<pthread_t?>(nil)

    public init() throws(SystemError) {
        fd = try syscall("socket(AF_NETLINK)") { socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), NETLINK_ROUTE) }
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else {
            let code = errno
            close(fd)
            throw SystemError("pipe", errno: code)
        }
        stopPipe = (ends[0], ends[1])
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
            close(ends[0])
            close(ends[1])
            throw error
        }
    }

    /// Starts the listening thread. `handler` runs on it, one notice at a time.
    public func start(_ handler: @escaping @Sendable (NetlinkNotice) -> Void) throws(SystemError) {
        let context = Unmanaged.passRetained(MonitorLoop(fd: fd, stop: stopPipe.read, handler: handler)).toOpaque()
        var created = pthread_t()
        let code = pthread_create(&created, nil, runMonitorLoop, context)
        guard code == 0 else {
            Unmanaged<MonitorLoop>.fromOpaque(context).release()
            throw SystemError("pthread_create", errno: code)
        }
        thread.withLock { $0 = created }
    }

    /// Stops the thread and waits for it. Idempotent.
    public func stop() {
        var one: UInt8 = 1
        _ = write(stopPipe.write, &one, 1)
        if let running = thread.withLock({ thread in defer { thread = nil }; return thread }) {
            pthread_join(running, nil)
        }
    }

    deinit {
        stop()
        close(fd)
        close(stopPipe.read)
        close(stopPipe.write)
    }
}

final class MonitorLoop: @unchecked Sendable {
    let fd: Int32
    let stop: Int32
    let handler: @Sendable (NetlinkNotice) -> Void

    init(fd: Int32, stop: Int32, handler: @escaping @Sendable (NetlinkNotice) -> Void) {
        self.fd = fd
        self.stop = stop
        self.handler = handler
    }

    func run() {
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: stop, events: Int16(POLLIN), revents: 0)]
        while true {
            guard poll(&fds, 2, -1) >= 0 || errno == EINTR else { return }
            if fds[1].revents != 0 { return }
            guard fds[0].revents != 0 else { continue }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count < 0 {
                if errno == ENOBUFS { handler(.overflow) }
                continue
            }
            guard let messages = try? NetlinkMessage.parse(buffer[0..<count]) else { continue }
            for message in messages {
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

private func runMonitorLoop(_ context: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    Unmanaged<MonitorLoop>.fromOpaque(context!).takeRetainedValue().run()
    return nil
}
