/// A minimal HTTP/1.1 client over Glibc sockets: one request per connection (`Connection: close`).
///
/// `exchange` sends a request and reads the whole answer; `open` sends it and returns after the head,
/// leaving the body to be read piece by piece (event streams, packet captures). Timeouts: connecting
/// and every wait for data are bounded by `timeout` seconds (0: wait for ever).
public struct HTTPClient {
    public struct Request {
        public var method: String
        /// The path with its query, already percent-encoded.
        public var target: String
        public var headers: [(name: String, value: String)] = []
        public var body: [UInt8]? = nil

        public init(method: String, target: String, headers: [(name: String, value: String)] = [], body: [UInt8]? = nil) {
            self.method = method
            self.target = target
            self.headers = headers
            self.body = body
        }
    }

    public struct Response {
        public let head: HTTPResponseHead
        public let body: [UInt8]
    }

    public let server: ServerAddress
    /// Names the program in tund's log: "tundctl/1", "tund-cni/1".
    public let userAgent: String

    public init(server: ServerAddress, userAgent: String) {
        self.server = server
        self.userAgent = userAgent
    }

    /// Sends `request` and returns the complete answer.
    public func exchange(_ request: Request, timeout: Double) throws(HTTPClientError) -> Response {
        let (head, reader) = try open(request, timeout: timeout)
        return Response(head: head, body: try reader.readBody())
    }

    /// Sends `request` and returns the answer's head and a reader for its body.
    public func open(_ request: Request, timeout: Double) throws(HTTPClientError) -> (HTTPResponseHead, HTTPResponseReader) {
        let connection = try SocketConnection.connect(to: server.endpoint, connectTimeout: timeout > 0 ? timeout : 10, readTimeout: timeout)
        try connection.send(serialize(request))
        let reader = HTTPResponseReader(connection: connection)
        let head = try reader.readHead(requestMethod: request.method)
        return (head, reader)
    }

    /// The request's bytes: request line, Host, User-Agent, Connection, the caller's headers,
    /// Content-Length when there is a body, then the body.
    public func serialize(_ request: Request) -> [UInt8] {
        var text = "\(request.method) \(server.pathPrefix)\(request.target) HTTP/1.1\r\n"
        text += "Host: \(server.hostHeader)\r\n"
        text += "User-Agent: \(userAgent)\r\n"
        text += "Connection: close\r\n"
        for header in request.headers { text += "\(header.name): \(header.value)\r\n" }
        if let body = request.body { text += "Content-Length: \(body.count)\r\n" }
        text += "\r\n"
        return Array(text.utf8) + (request.body ?? [])
    }
}
