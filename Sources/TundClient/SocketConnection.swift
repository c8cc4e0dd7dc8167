#if canImport(Glibc)
import Glibc
#endif

/// One connected stream socket to tund (TCP or Unix), with timeouts. Closed when released.
///
/// Contract: `connect` gives up after `connectTimeout` seconds; `receive` waits at most `readTimeout`
/// seconds for data (SO_RCVTIMEO; 0 waits for ever) and then throws `.timedOut`; `send` writes
/// everything or throws. SIGPIPE is never raised (MSG_NOSIGNAL).
public final class SocketConnection {
    private let descriptor: Int32

    private init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    /// Connects to the first address of `endpoint` that accepts.
    public static func connect(to endpoint: ServerAddress.Endpoint, connectTimeout: Double, readTimeout: Double) throws(HTTPClientError) -> SocketConnection {
        let connection: SocketConnection
        switch endpoint {
        case .unix(let path): connection = try connectUnix(path: path, timeout: connectTimeout)
        case .tcp(let host, let port): connection = try connectTCP(host: host, port: port, timeout: connectTimeout)
        }
        try connection.setReadTimeout(readTimeout)
        return connection
    }

    /// Changes how long `receive` waits for data; 0 waits for ever.
    public func setReadTimeout(_ seconds: Double) throws(HTTPClientError) {
        var value = timeval(seconds: seconds)
        guard setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size)) == 0 else {
            throw .unreachable(errno: errno)
        }
        var sendValue = timeval(seconds: seconds)
        _ = setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &sendValue, socklen_t(MemoryLayout<timeval>.size))
    }

    public func send(_ bytes: [UInt8]) throws(HTTPClientError) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent < 0 {
                let error = errno
                if error == EINTR { continue }
                if error == EAGAIN || error == EWOULDBLOCK { throw .timedOut }
                throw .connectionLost(errno: error)
            }
            offset += sent
        }
    }

    /// Up to `limit` bytes as they arrive; empty at end of stream.
    public func receive(limit: Int = 64 * 1024) throws(HTTPClientError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: limit)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count >= 0 { return Array(buffer[..<count]) }
            let error = errno
            if error == EINTR { continue }
            if error == EAGAIN || error == EWOULDBLOCK { throw .timedOut }
            throw .connectionLost(errno: error)
        }
    }

    // MARK: Connecting

    private static func connectUnix(path: String, timeout: Double) throws(HTTPClientError) -> SocketConnection {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard pathBytes.count < capacity else { throw .unreachable(errno: ENAMETOOLONG) }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
            raw[pathBytes.count] = 0
        }
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw .unreachable(errno: errno) }
        let connection = SocketConnection(descriptor: descriptor)
        try withUnsafePointer(to: &address) { pointer throws(HTTPClientError) in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic throws(HTTPClientError) in
                try connection.connect(generic, length: socklen_t(MemoryLayout<sockaddr_un>.size), timeout: timeout)
            }
        }
        return connection
    }

    private static func connectTCP(host: String, port: UInt16, timeout: Double) throws(HTTPClientError) -> SocketConnection {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV  // no AI_ADDRCONFIG: it hides 127.0.0.1 on a host whose only IPv4 address is loopback
        var results: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &results)
        guard status == 0, let first = results else {
            throw .unresolvable(host: host, reason: String(cString: gai_strerror(status)))
        }
        defer { freeaddrinfo(first) }
        var lastError = ECONNREFUSED
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let info = candidate {
            candidate = info.pointee.ai_next
            let descriptor = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), info.pointee.ai_protocol)
            guard descriptor >= 0 else { lastError = errno; continue }
            let connection = SocketConnection(descriptor: descriptor)
            do {
                try connection.connect(info.pointee.ai_addr, length: info.pointee.ai_addrlen, timeout: timeout)
                var one: Int32 = 1
                _ = setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                return connection
            } catch {
                if case .unreachable(let code) = error { lastError = code }
            }
        }
        throw .unreachable(errno: lastError)
    }

    /// A non-blocking connect bounded by `timeout`, then back to blocking mode.
    private func connect(_ address: UnsafePointer<sockaddr>, length: socklen_t, timeout: Double) throws(HTTPClientError) {
        let flags = fcntl(descriptor, F_GETFL)
        _ = fcntl(descriptor, F_SETFL, flags | O_NONBLOCK)
        defer { _ = fcntl(descriptor, F_SETFL, flags) }
        if Glibc.connect(descriptor, address, length) == 0 { return }
        guard errno == EINPROGRESS || errno == EINTR else { throw .unreachable(errno: errno) }
        var waiting = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
        let milliseconds = timeout > 0 ? Int32(min(timeout * 1000, Double(Int32.max))) : -1
        var ready: Int32
        repeat { ready = poll(&waiting, 1, milliseconds) } while ready < 0 && errno == EINTR
        guard ready > 0 else { throw .unreachable(errno: ready == 0 ? ETIMEDOUT : errno) }
        var failure: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        _ = getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &failure, &size)
        guard failure == 0 else { throw .unreachable(errno: failure) }
    }
}

extension timeval {
    /// A timeval of `seconds` (fractions kept to the microsecond); 0 means no timeout to SO_RCVTIMEO.
    init(seconds: Double) {
        let whole = seconds.rounded(.down)
        self.init(tv_sec: Int(whole), tv_usec: Int((seconds - whole) * 1_000_000))
    }
}
