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

    /// `gro`: ask for runs of datagrams from one source as one buffer (UDP_GRO), for a device with offloads.
    static func open(port: UInt16, gro: Bool = false) throws(PlaneError) -> WireGuardSocket {
        // IPv6 first; a kernel without IPv6 (or with it disabled) refuses the socket or the bind.
        do {
            let v6 = try openTunnelSocket(SocketAddress(address: .v6([UInt8](repeating: 0, count: 16)), port: port), gro: gro, dualStack: true)
            return WireGuardSocket(descriptor: v6, isIPv6: true)
        } catch where error.errno == .EADDRINUSE {
            throw error  // The port is taken: IPv4 alone would only fail the same way, and say less.
        } catch {
            return WireGuardSocket(descriptor: try openTunnelSocket(SocketAddress(address: .v4(0), port: port), gro: gro), isIPv6: false)
        }
    }

    /// How `address` is written for this socket: v4-mapped on the dual-stack socket.
    func storage(for address: SocketAddress) -> SocketAddressStorage {
        guard isIPv6, case .v4 = address.address else { return SocketAddressStorage(address) }
        let mapped = [UInt8](repeating: 0, count: 10) + [0xff, 0xff] + address.address.bytes
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
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff, let v4 = IPAddress(bytes: Array(bytes[12..<16])) {
            return SocketAddress(address: v4, port: port)
        }
        return SocketAddress(address: .v6(bytes), port: port)
    }
}

