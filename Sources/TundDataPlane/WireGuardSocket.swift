#if canImport(Glibc)
import Glibc
#endif
import CBatchIO
import Errno
import NetAddress

/// The `wireguard` worker's UDP socket: one socket for both families where the kernel allows it (an
/// IPv6 socket on [::] with IPV6_V6ONLY off, IPv4 peers as v4-mapped addresses, as wireguard-go's
/// "dual stack" bind does), else IPv4 alone on 0.0.0.0. Non-blocking, large buffers.
struct WireGuardSocket {
    let descriptor: Int32
    /// True for the dual-stack IPv6 socket: every address given to it must be a `sockaddr_in6`.
    let isIPv6: Bool

    static func open(port: UInt16) throws(PlaneError) -> WireGuardSocket {
        let kind = Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
        var size: Int32 = 4 << 20
        // IPv6 first; a kernel without IPv6 (or with it disabled) refuses the socket or the bind.
        let v6 = socket(AF_INET6, kind, 0)
        if v6 >= 0 {
            var off: Int32 = 0
            _ = setsockopt(v6, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &off, 4)
            _ = setsockopt(v6, SOL_SOCKET, SO_RCVBUF, &size, 4)
            _ = setsockopt(v6, SOL_SOCKET, SO_SNDBUF, &size, 4)
            var address = SocketAddressStorage(SocketAddress(address: .v6([UInt8](repeating: 0, count: 16)), port: port))
            if address.withSockaddr({ bind(v6, $0, $1) }) == 0 { return WireGuardSocket(descriptor: v6, isIPv6: true) }
            let code = errno
            close(v6)
            // The port is taken: IPv4 alone would only fail the same way, and say less.
            if code == EADDRINUSE { throw PlaneError(operation: "bind(UDP) [::]:\(port)", errno: Errno(code)) }
        }
        let v4 = socket(AF_INET, kind, 0)
        guard v4 >= 0 else { throw PlaneError(operation: "socket(UDP)", errno: Errno(errno)) }
        _ = setsockopt(v4, SOL_SOCKET, SO_RCVBUF, &size, 4)
        _ = setsockopt(v4, SOL_SOCKET, SO_SNDBUF, &size, 4)
        var address = SocketAddressStorage(SocketAddress(address: .v4(0), port: port))
        guard address.withSockaddr({ bind(v4, $0, $1) }) == 0 else {
            let code = errno
            close(v4)
            throw PlaneError(operation: "bind(UDP) 0.0.0.0:\(port)", errno: Errno(code))
        }
        return WireGuardSocket(descriptor: v4, isIPv6: false)
    }

    /// How `address` is written for this socket: v4-mapped on the dual-stack socket.
    func storage(for address: SocketAddress) -> SocketAddressStorage {
        guard isIPv6, case .v4(let value) = address.address else { return SocketAddressStorage(address) }
        let mapped: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
                               UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
        return SocketAddressStorage(SocketAddress(address: .v6(mapped), port: address.port))
    }

    /// The port the kernel bound (the configured one, or its pick for 0).
    var boundPort: UInt16 {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard ok == 0 else { return 0 }
        return withUnsafeBytes(of: storage) { UInt16(bigEndian: $0.loadUnaligned(fromByteOffset: 2, as: UInt16.self)) }
    }

    /// Sends one datagram (a handshake message, a keepalive, a staged packet) at once; false when the
    /// kernel refused it.
    func send(_ bytes: UnsafeRawBufferPointer, to address: UnsafePointer<sockaddr_storage>, length: socklen_t) -> Bool {
        address.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            sendto(descriptor, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT), $0, length)
        } == bytes.count
    }
}

extension SocketAddressStorage {
    /// What `recvmmsg` wrote as a datagram's source, as an address (v4-mapped IPv6 unmapped); nil for
    /// another family.
    static func socketAddress(_ raw: UnsafeRawPointer, length: socklen_t) -> SocketAddress? {
        let family = Int32(raw.load(as: sa_family_t.self))
        let port = UInt16(bigEndian: raw.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
        if family == AF_INET, length >= socklen_t(MemoryLayout<sockaddr_in>.size) {
            return SocketAddress(address: .v4(UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: 4, as: UInt32.self))), port: port)
        }
        guard family == AF_INET6, length >= socklen_t(MemoryLayout<sockaddr_in6>.size) else { return nil }
        let bytes = (0..<16).map { raw.load(fromByteOffset: 8 + $0, as: UInt8.self) }
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff {
            return SocketAddress(address: .v4(bytes[12..<16].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }), port: port)
        }
        return SocketAddress(address: .v6(bytes), port: port)
    }
}

