#if canImport(Glibc)
import Glibc
#endif
import CMicroHTTPD
import PercentEncoding
import Synchronization

/// An HTTP/1.1 server on libmicrohttpd: a fixed pool of threads polling connections (epoll), each request
/// read in full (up to `maxBodyBytes`) and answered by one synchronous call to `handler`.
///
/// It knows nothing of devices: it hands `HTTPRequest`s to the handler and writes `HTTPResponse`s back.
/// The one answer it makes itself, 413 for a body over the limit, comes from `Configuration.tooLarge` so the
/// application keeps its error format.
public final class HTTPServer: Sendable {
    public struct Configuration: Sendable {
        public var threads: Int = 2
        public var maxBodyBytes: Int = 64 * 1024
        public var connectionLimit: Int = 256
        /// Idle seconds before a connection is closed (also bounds a slow body).
        public var connectionTimeoutSeconds: Int = 30
        /// Builds the 413 answer for a body over `maxBodyBytes`.
        public var tooLarge: @Sendable (_ limit: Int) -> HTTPResponse
        /// Builds the 400 answer for a request the server refuses before routing (a NUL in the target).
        public var badRequest: @Sendable (_ reason: String) -> HTTPResponse
        /// Builds the 503 answer for a request on a connection beyond `connectionLimit`.
        public var tooManyConnections: @Sendable (_ limit: Int) -> HTTPResponse
        /// PEM certificate chain and key: both set to serve HTTPS.
        public var tlsCertificatePEM: String?
        public var tlsKeyPEM: String?
        /// Permissions of a Unix socket (`unix:` listen addresses).
        public var unixSocketMode: UInt32 = 0o660
        /// The names a request may use in Host and Origin; nil admits any (see `HostPolicy`).
        public var hostPolicy: HostPolicy?
        /// Builds the answer to a request refused from its head (framing, Host, Origin); the server adds
        /// `Connection: close`, since what follows on the connection cannot be trusted to be a request.
        public var rejected: @Sendable (HeadRejection) -> HTTPResponse = { _ in HTTPResponse(status: 400) }

        public init(tooLarge: @escaping @Sendable (_ limit: Int) -> HTTPResponse,
                    badRequest: @escaping @Sendable (_ reason: String) -> HTTPResponse,
                    tooManyConnections: @escaping @Sendable (_ limit: Int) -> HTTPResponse) {
            self.tooLarge = tooLarge
            self.badRequest = badRequest
            self.tooManyConnections = tooManyConnections
        }
    }

    let configuration: Configuration
    let handler: @Sendable (HTTPRequest) -> HTTPResponse
    public let address: ListenAddress
    private let daemon: Mutex<DaemonHandle?>
    /// Connections open now (libmicrohttpd's connection notifications).
    let openConnections = Atomic<Int>(0)
    /// libmicrohttpd's own, hard limit sits above `connectionLimit` by this much, so that connections past
    /// the limit get a 503 that says so instead of being closed without a word at accept.
    static let connectionHeadroom = 64
    private let tlsMaterial: TLSMaterial
    /// Ends streamed responses whose clients left while they were idle.
    let hangups = HangupWatcher()

    /// Binds `address` and starts serving on the pool's threads.
    public init(address: ListenAddress, configuration: Configuration,
                handler: @escaping @Sendable (HTTPRequest) -> HTTPResponse) throws(ListenError) {
        self.address = address
        self.configuration = configuration
        self.handler = handler
        daemon = Mutex(nil)
        if configuration.tlsCertificatePEM != nil, tund_mhd_supports_tls() == 0 {
            throw ListenError(address: address, function: "TLS (this libmicrohttpd was built without it)", errno: EPROTONOSUPPORT)
        }
        let fd = try openListeningSocket(address, unixMode: mode_t(configuration.unixSocketMode))
        // libmicrohttpd keeps pointers to the PEM texts; they live as long as this server.
        tlsMaterial = TLSMaterial(certificate: configuration.tlsCertificatePEM.map { strdup($0) },
                                  key: configuration.tlsKeyPEM.map { strdup($0) })
        var options = tund_mhd_options(
            listen_fd: fd, thread_pool_size: UInt32(configuration.threads),
            connection_limit: UInt32(configuration.connectionLimit + Self.connectionHeadroom),
            connection_timeout_seconds: UInt32(configuration.connectionTimeoutSeconds),
            // Headers and each body chunk must fit this buffer; bodies are copied out as they arrive.
            connection_memory_limit: 64 * 1024,
            tls_cert_pem: tlsMaterial.certificate.map { UnsafePointer($0) }, tls_key_pem: tlsMaterial.key.map { UnsafePointer($0) })
        // The daemon holds an unretained pointer: `stop` (called by deinit at the latest) ends all callbacks first.
        let context = Unmanaged.passUnretained(self).toOpaque()
        let started = tund_mhd_start(&options, handleAccess, context, handleCompleted, nil, logRequestTarget, nil,
                                     countConnection, context)
        guard let started else {
            close(fd)
            throw ListenError(address: address, function: "MHD_start_daemon", errno: errno)
        }
        daemon.withLock { $0 = DaemonHandle(pointer: started) }
    }

    /// Stops accepting, finishes the requests in flight, joins the threads. Idempotent.
    public func stop() {
        let running = daemon.withLock { daemon in
            defer { daemon = nil }
            return daemon
        }
        // Closes the listening socket, ends every connection, joins the pool's threads.
        if let running = running?.pointer { MHD_stop_daemon(running) }
        hangups.stop()
    }

    deinit {
        stop()
        free(tlsMaterial.certificate)
        free(tlsMaterial.key)
    }
}

/// Copies of the PEM texts handed to libmicrohttpd, freed after it stops.
struct TLSMaterial: @unchecked Sendable {
    let certificate: UnsafeMutablePointer<CChar>?
    let key: UnsafeMutablePointer<CChar>?
}

/// libmicrohttpd's daemon pointer: MHD_stop_daemon may be called from any thread.
struct DaemonHandle: @unchecked Sendable {
    let pointer: OpaquePointer
}

/// Per-request state across the access handler's calls (headers, body chunks, final call). Made by the
/// URI log callback, which is the one place that sees the request-target before it is cut at a NUL.
final class RequestState {
    var body: [UInt8] = []
    /// The header lines, read once with the head and handed to the request at the end.
    var headers: [(name: String, value: String)] = []
    var tooLarge = false
    /// strlen of the request-target as libmicrohttpd first saw it.
    let targetLength: Int
    /// Whether the target has a query string: without one there are no arguments to ask for.
    let hasQuery: Bool
    var started = false
    /// When the first call came; a body still arriving `bodyDeadlineSeconds` later is cut off.
    var startedAt: UInt64 = 0

    init(targetLength: Int, hasQuery: Bool) {
        self.targetLength = targetLength
        self.hasQuery = hasQuery
    }
}

/// libmicrohttpd's URI log callback: runs once per request, before the target is parsed; its return
/// value becomes the request's context.
private func logRequestTarget(_ context: UnsafeMutableRawPointer?, _ uri: UnsafePointer<CChar>?, _ connection: OpaquePointer?) -> UnsafeMutableRawPointer? {
    Unmanaged.passRetained(RequestState(targetLength: uri.map { strlen($0) } ?? 0, hasQuery: uri.map { strchr($0, 0x3F) != nil } ?? false)).toOpaque()
}

/// libmicrohttpd's connection notification: counts open connections for the soft limit.
private func countConnection(_ context: UnsafeMutableRawPointer?, _ connection: OpaquePointer?,
                             _ socketContext: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, _ code: MHD_ConnectionNotificationCode) {
    guard let context else { return }
    let server = Unmanaged<HTTPServer>.fromOpaque(context).takeUnretainedValue()
    if code.rawValue == 0 {  // MHD_CONNECTION_NOTIFY_STARTED (1 is CLOSED)
        server.openConnections.add(1, ordering: .relaxed)
    } else {
        server.openConnections.subtract(1, ordering: .relaxed)
    }
}

private func monotonicSeconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec)
}

/// libmicrohttpd's access handler. A free function: C calls it on the pool's threads, and nothing here
/// may carry actor isolation. It runs once with the headers, once per body chunk, and once at the end,
/// which is the only call that answers (except the early 413 on a declared Content-Length over the limit).
private func handleAccess(
    _ context: UnsafeMutableRawPointer?, _ connection: OpaquePointer?, _ url: UnsafePointer<CChar>?,
    _ method: UnsafePointer<CChar>?, _ version: UnsafePointer<CChar>?, _ uploadData: UnsafePointer<CChar>?,
    _ uploadDataSize: UnsafeMutablePointer<Int>?, _ requestContext: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
) -> MHD_Result {
    guard let context, let connection, let requestContext, let uploadDataSize, let stored = requestContext.pointee else { return .NO }
    let server = Unmanaged<HTTPServer>.fromOpaque(context).takeUnretainedValue()
    let limit = server.configuration.maxBodyBytes
    let state = Unmanaged<RequestState>.fromOpaque(stored).takeUnretainedValue()
    if !state.started {
        state.started = true
        state.startedAt = monotonicSeconds()
        let connectionLimit = server.configuration.connectionLimit
        if server.openConnections.load(ordering: .relaxed) > connectionLimit {
            return queue(server.configuration.tooManyConnections(connectionLimit), on: connection)
        }
        // libmicrohttpd 0.9.75 accepts a NUL inside the request-target and hands over only what precedes
        // it ("DELETE /devices/tap0\0junk" would delete tap0). The target ends just before the version,
        // so any gap between where the C string stops and the version is such a NUL: refuse the request.
        if let url, let version, state.targetLength < UnsafeRawPointer(version) - UnsafeRawPointer(url) - 1,
           UnsafeRawBufferPointer(start: UnsafeRawPointer(url) + state.targetLength,
                                  count: UnsafeRawPointer(version) - UnsafeRawPointer(url) - state.targetLength - 1)
               .contains(where: { $0 != 0x20 }) {
            return queue(server.configuration.badRequest("the request-target contains a NUL byte"), on: connection)
        }
        let http10 = version.map { strcmp($0, "HTTP/1.0") == 0 } ?? false
        state.headers = headerLines(connection)
        if let rejection = RequestHead.check(state.headers, http10: http10, policy: server.configuration.hostPolicy) {
            var response = server.configuration.rejected(rejection)
            response.headers.append(("Connection", "close"))
            return queue(response, on: connection)
        }
        if let declared = MHD_lookup_connection_value(connection, .HEADER_KIND, "Content-Length"),
           let length = Int(String(cString: declared)), length > limit {
            state.tooLarge = true
            return queue(server.configuration.tooLarge(limit), on: connection)
        }
        return .YES
    }
    if uploadDataSize.pointee > 0 {
        // The connection timeout is reset by every byte; a body must also arrive within it as a whole.
        if monotonicSeconds() - state.startedAt > UInt64(server.configuration.connectionTimeoutSeconds) { return .NO }
        if !state.tooLarge, let uploadData {
            if state.body.count + uploadDataSize.pointee > limit {
                state.tooLarge = true
                state.body = []
            } else {
                uploadData.withMemoryRebound(to: UInt8.self, capacity: uploadDataSize.pointee) {
                    state.body.append(contentsOf: UnsafeBufferPointer(start: $0, count: uploadDataSize.pointee))
                }
            }
        }
        uploadDataSize.pointee = 0
        return .YES
    }
    if state.tooLarge { return queue(server.configuration.tooLarge(limit), on: connection) }
    // libmicrohttpd hands over the path without the query string, whose arguments it has parsed apart;
    // a `?` is cut off all the same, should a version ever pass it on.
    let path = url.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: strcspn($0, "?")), as: UTF8.self) } ?? "/"
    let request = HTTPRequest(
        method: method.map(methodName) ?? "GET",
        path: path,
        query: state.hasQuery ? queryArguments(connection) : [:],
        headers: HTTPHeaders(lines: state.headers),
        body: state.body)
    state.body = []
    state.headers = []
    return queue(server.handler(request), on: connection, watcher: server.hangups)
}

private func handleCompleted(
    _ context: UnsafeMutableRawPointer?, _ connection: OpaquePointer?,
    _ requestContext: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, _ reason: MHD_RequestTerminationCode
) {
    guard let requestContext, let stored = requestContext.pointee else { return }
    Unmanaged<RequestState>.fromOpaque(stored).release()
    requestContext.pointee = nil
}

private func queue(_ response: HTTPResponse, on connection: OpaquePointer, watcher: HangupWatcher? = nil) -> MHD_Result {
    let created: OpaquePointer?
    if let stream = response.stream {
        stream.attach(connection)
        watcher?.watch(tund_mhd_connection_fd(connection), stream)
        // The response holds the stream until MHD frees it (freeStream), after the connection is done.
        created = MHD_create_response_from_callback(UInt64.max, 16 * 1024, readStream,
                                                    Unmanaged.passRetained(stream).toOpaque(), freeStream)
    } else {
        // libmicrohttpd sends from the body's own storage, which it releases when done (no copy of it).
        let body = ResponseBody(response.body)
        created = body.bytes.withUnsafeBytes { raw in
            MHD_create_response_from_buffer_with_free_callback_cls(raw.count, UnsafeMutableRawPointer(mutating: raw.baseAddress),
                                                                   releaseBody, Unmanaged.passRetained(body).toOpaque())
        }
        if created == nil { Unmanaged.passUnretained(body).release() }
    }
    guard let created else { return .NO }
    for (name, value) in response.headers {
        name.withCString { name in value.withCString { value in _ = MHD_add_response_header(created, name, value) } }
    }
    let result = MHD_queue_response(connection, UInt32(response.status), created)
    MHD_destroy_response(created)
    return result
}

/// An answer's body, kept alive while libmicrohttpd sends from it.
private final class ResponseBody {
    let bytes: [UInt8]

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }
}

private func releaseBody(_ context: UnsafeMutableRawPointer?) {
    guard let context else { return }
    Unmanaged<ResponseBody>.fromOpaque(context).release()
}

private func readStream(_ context: UnsafeMutableRawPointer?, _ position: UInt64, _ buffer: UnsafeMutablePointer<CChar>?, _ max: Int) -> Int {
    guard let context, let buffer else { return -2 }  // MHD_CONTENT_READER_END_WITH_ERROR
    let stream = Unmanaged<HTTPStream>.fromOpaque(context).takeUnretainedValue()
    return stream.read(into: UnsafeMutableRawBufferPointer(start: buffer, count: max))
}

private func freeStream(_ context: UnsafeMutableRawPointer?) {
    guard let context else { return }
    Unmanaged<HTTPStream>.fromOpaque(context).takeRetainedValue().closed()
}

/// The request method: the common ones as constant strings (nothing to allocate or copy), others as sent.
private func methodName(_ method: UnsafePointer<CChar>) -> String {
    if strcmp(method, "GET") == 0 { return "GET" }
    if strcmp(method, "POST") == 0 { return "POST" }
    if strcmp(method, "PUT") == 0 { return "PUT" }
    if strcmp(method, "PATCH") == 0 { return "PATCH" }
    if strcmp(method, "DELETE") == 0 { return "DELETE" }
    return String(cString: method)
}

/// The header lines as sent: names as written, duplicates kept, in order.
private func headerLines(_ connection: OpaquePointer) -> [(name: String, value: String)] {
    var lines: [(name: String, value: String)] = []
    lines.reserveCapacity(8)  // most requests carry a handful: no growth on the way
    withUnsafeMutablePointer(to: &lines) { pointer in
        _ = MHD_get_connection_values(connection, .HEADER_KIND, collectHeader, pointer)
    }
    return lines
}

private func collectHeader(_ context: UnsafeMutableRawPointer?, _ kind: MHD_ValueKind, _ key: UnsafePointer<CChar>?, _ value: UnsafePointer<CChar>?) -> MHD_Result {
    guard let context, let key else { return .YES }
    context.assumingMemoryBound(to: [(name: String, value: String)].self).pointee
        .append((String(cString: key), value.map { String(cString: $0) } ?? ""))
    return .YES
}

/// The query arguments, percent-decoded (`+` is a space); of a repeated name, the last.
private func queryArguments(_ connection: OpaquePointer) -> [String: String] {
    var values: [String: String] = [:]
    withUnsafeMutablePointer(to: &values) { pointer in
        _ = MHD_get_connection_values(connection, .GET_ARGUMENT_KIND, collectArgument, pointer)
    }
    return values
}

private func collectArgument(_ context: UnsafeMutableRawPointer?, _ kind: MHD_ValueKind, _ key: UnsafePointer<CChar>?, _ value: UnsafePointer<CChar>?) -> MHD_Result {
    guard let context, let key else { return .YES }
    let name = String(cString: key), text = value.map { String(cString: $0) } ?? ""
    context.assumingMemoryBound(to: [String: String].self).pointee[percentDecode(Substring(name.replacingPlus())) ?? name] =
        percentDecode(Substring(text.replacingPlus())) ?? text
    return .YES
}

extension String {
    /// In a query string `+` means space.
    func replacingPlus() -> String { String(map { $0 == "+" ? " " : $0 }) }
}
