#if canImport(Glibc)
import Glibc
#endif
import Errno
import NetAddress

/// A UDP socket bound to `local`, non-blocking, with large buffers: the tunnel's underlay. `gro`: ask the
/// kernel to hand over runs of datagrams from one source as one buffer (UDP_GRO), when it can.
/// `dualStack`: an IPv6 socket that takes IPv4 peers too, as v4-mapped addresses (IPV6_V6ONLY off).
func openTunnelSocket(_ local: SocketAddress, gro: Bool, dualStack: Bool = false) throws(PlaneError) -> Int32 {
    func failure(_ operation: String, _ code: Int32) -> PlaneError {
        PlaneError(operation: "\(operation) \(local)", errno: Errno(code))
    }
    let family = local.address.family == .ipv4 ? AF_INET : AF_INET6
    let fd = socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
    guard fd >= 0 else { throw failure("socket(UDP)", errno) }
    if dualStack && family == AF_INET6 {
        var off: Int32 = 0
        _ = setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &off, 4)
    }
    // 4 MiB each way, past net.core.[rw]mem_max (208 KiB by default) where tund may (CAP_NET_ADMIN): a
    // burst the plane thread has not yet come to waits in the buffer instead of being dropped.
    var size: Int32 = 4 << 20
    if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, 4) != 0 { _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, 4) }
    if setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, 4) != 0 { _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, 4) }
    if gro {
        var on: Int32 = 1
        _ = setsockopt(fd, 17, 104, &on, 4)  // SOL_UDP, UDP_GRO: refused by old kernels, which is fine
    }
    var address = SocketAddressStorage(local)
    let bound = address.withSockaddr { bind(fd, $0, $1) }
    guard bound == 0 else {
        let code = errno
        close(fd)
        throw failure("bind(UDP)", code)
    }
    return fd
}

/// A `sockaddr_in` or `sockaddr_in6` in one fixed-size value, comparable byte for byte with what
/// `recvmmsg` fills in.
struct SocketAddressStorage: Sendable {
    var storage = sockaddr_storage()
    let length: socklen_t

    init(_ address: SocketAddress) {
        switch address.address {
        case .v4(let value):
            var raw = sockaddr_in()
            raw.sin_family = sa_family_t(AF_INET)
            raw.sin_port = address.port.bigEndian
            raw.sin_addr = in_addr(s_addr: value.bigEndian)
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
            Self.copy(raw, into: &storage)
        case .v6(let bytes):
            var raw = sockaddr_in6()
            raw.sin6_family = sa_family_t(AF_INET6)
            raw.sin6_port = address.port.bigEndian
            withUnsafeMutableBytes(of: &raw.sin6_addr) { $0.copyBytes(from: bytes) }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            Self.copy(raw, into: &storage)
        }
    }

    /// The source's bytes are read only inside its own `withUnsafeBytes`: a pointer that left that
    /// closure would be undefined behaviour, and the optimizer made one into a garbage sockaddr.
    private static func copy<Raw>(_ raw: Raw, into storage: inout sockaddr_storage) {
        withUnsafeBytes(of: raw) { source in
            withUnsafeMutableBytes(of: &storage) { destination in destination.copyMemory(from: source) }
        }
    }

    mutating func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        let length = self.length
        return withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) } }
    }

    /// True when `other` (as the kernel filled it in) is this address and port.
    func matches(_ other: UnsafeRawPointer, length otherLength: socklen_t) -> Bool {
        guard otherLength == length else { return false }
        return withUnsafeBytes(of: storage) { mine in
            let family = mine.load(as: sa_family_t.self)
            // Port and address only: sin_zero and sin6_flowinfo/scope may differ.
            if family == sa_family_t(AF_INET) { return memcmp(mine.baseAddress! + 2, other + 2, 6) == 0 }
            return memcmp(mine.baseAddress! + 2, other + 2, 2) == 0 && memcmp(mine.baseAddress! + 8, other + 8, 16) == 0
        }
    }
}
