#if canImport(Glibc)
import Glibc
#endif

/// Where to listen: `127.0.0.1:8080`, `[::1]:8080`, `0.0.0.0:8080`, or `unix:/run/tund/tund.sock`.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public let host: String
    public let port: UInt16
    /// Set for a Unix domain socket; `host` and `port` are then unused.
    public let unixPath: String?

    public init?(_ text: String) {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            // sun_path holds 108 bytes with its terminator.
            guard path.hasPrefix("/"), path.utf8.count < 108 else { return nil }
            host = ""
            port = 0
            unixPath = path
            return
        }
        unixPath = nil
        let host: Substring, port: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            port = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        }
        guard let number = UInt16(port), !host.isEmpty else { return nil }
        var probe4 = in_addr(), probe6 = in6_addr()
        guard inet_pton(AF_INET, String(host), &probe4) == 1 || inet_pton(AF_INET6, String(host), &probe6) == 1 else { return nil }
        self.host = String(host)
        self.port = number
    }

    public var isIPv6: Bool { host.contains(":") }

    /// 127.0.0.0/8 and ::1: reachable from this host only.
    public var isLoopback: Bool { host == "::1" || host.hasPrefix("127.") }

    public var description: String {
        if let unixPath { return "unix:\(unixPath)" }
        return isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

/// Why the server could not start: the socket call and errno (EADDRINUSE: port taken).
public struct ListenError: Error, Sendable, CustomStringConvertible {
    public let address: ListenAddress
    public let function: String
    public let errno: Int32

    public var description: String {
        let reason = errno == EADDRINUSE ? "the port is already in use"
            : errno == EADDRNOTAVAIL ? "no interface has that address"
            : errno == EACCES ? "permission denied (ports below 1024 need CAP_NET_BIND_SERVICE)"
            : String(cString: strerror(errno))
        return "cannot listen on \(address): \(function) failed: \(reason)"
    }
}

/// A bound, listening socket (close-on-exec), handed to libmicrohttpd: TCP with SO_REUSEADDR, or a Unix
/// socket created with `unixMode` (its permissions are the access control) after removing a stale one.
func openListeningSocket(_ address: ListenAddress, unixMode: mode_t = 0o660) throws(ListenError) -> Int32 {
    if let path = address.unixPath { return try openUnixSocket(address, path: path, mode: unixMode) }
    let family = address.isIPv6 ? AF_INET6 : AF_INET
    let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw ListenError(address: address, function: "socket", errno: errno) }
    var one: Int32 = 1
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    let bound: Int32
    if address.isIPv6 {
        var raw = sockaddr_in6()
        raw.sin6_family = sa_family_t(AF_INET6)
        raw.sin6_port = address.port.bigEndian
        inet_pton(AF_INET6, address.host, &raw.sin6_addr)
        setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size))
        bound = withUnsafePointer(to: &raw) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
    } else {
        var raw = sockaddr_in()
        raw.sin_family = sa_family_t(AF_INET)
        raw.sin_port = address.port.bigEndian
        inet_pton(AF_INET, address.host, &raw.sin_addr)
        bound = withUnsafePointer(to: &raw) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    }
    return try listening(fd, bound: bound, address)
}

private func openUnixSocket(_ address: ListenAddress, path: String, mode: mode_t) throws(ListenError) -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw ListenError(address: address, function: "socket", errno: errno) }
    // A socket file left by a previous run would make bind fail with EADDRINUSE; a live one is in use
    // and connect tells the difference.
    var raw = sockaddr_un()
    raw.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &raw.sun_path) { buffer in
        buffer.copyBytes(from: Array(path.utf8) + [0])
    }
    let length = socklen_t(MemoryLayout<sockaddr_un>.size)
    let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    let live = withUnsafePointer(to: &raw) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(probe, $0, length) } } == 0
    close(probe)
    if live {
        close(fd)
        throw ListenError(address: address, function: "bind", errno: EADDRINUSE)
    }
    unlink(path)
    // The mode applies from the first moment the file exists, not after a chmod race.
    let previous = umask(~mode & 0o777)
    let bound = withUnsafePointer(to: &raw) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    umask(previous)
    return try listening(fd, bound: bound, address)
}

/// Turns a socket whose bind returned `bound` into a listening one, closing it on any failure.
private func listening(_ fd: Int32, bound: Int32, _ address: ListenAddress) throws(ListenError) -> Int32 {
    guard bound == 0 else {
        let code = errno
        close(fd)
        throw ListenError(address: address, function: "bind", errno: code)
    }
    guard listen(fd, 128) == 0 else {
        let code = errno
        close(fd)
        throw ListenError(address: address, function: "listen", errno: code)
    }
    return fd
}
