import TundJSON

/// tund's HTTP API as its clients use it: JSON request bodies, the bearer token on every request, and
/// error answers (any non-2xx status) thrown as `ServerError`.
public struct APIClient {
    public let http: HTTPClient
    /// Sent as `Authorization: Bearer <token>` when set.
    public let token: String?
    /// Seconds to wait for connecting and for each read; 0 waits for ever.
    public let timeout: Double

    public var server: ServerAddress { http.server }

    public init(http: HTTPClient, token: String?, timeout: Double) {
        self.http = http
        self.token = token
        self.timeout = timeout
    }

    /// A request that expects a complete answer. `json` becomes the body (`application/json`).
    public func send(_ method: String, _ path: String, json: JSONValue? = nil, headers: [(name: String, value: String)] = []) throws -> APIResponse {
        let response = try http.exchange(request(method, path, json: json, headers: headers), timeout: timeout)
        guard response.head.isSuccess else { throw ServerError(head: response.head, body: response.body) }
        return APIResponse(head: response.head, body: response.body)
    }

    public func get(_ path: String) throws -> APIResponse { try send("GET", path) }

    /// A GET whose body is read as it arrives. `streamTimeout` bounds each wait for body data after the
    /// head (0: for ever). An error answer is read whole and thrown as `ServerError`.
    public func openStream(_ path: String, headers: [(name: String, value: String)] = [], streamTimeout: Double) throws -> (HTTPResponseHead, HTTPResponseReader) {
        let (head, reader) = try http.open(request("GET", path, json: nil, headers: headers), timeout: timeout)
        guard head.isSuccess else { throw ServerError(head: head, body: try reader.readBody()) }
        try reader.setReadTimeout(streamTimeout)
        return (head, reader)
    }

    private func request(_ method: String, _ path: String, json: JSONValue?, headers: [(name: String, value: String)]) -> HTTPClient.Request {
        var request = HTTPClient.Request(method: method, target: path)
        if !headers.contains(where: { $0.name.lowercased() == "accept" }) { request.headers.append(("Accept", "application/json")) }
        if let token { request.headers.append(("Authorization", "Bearer \(token)")) }
        if let json {
            request.headers.append(("Content-Type", "application/json"))
            request.body = json.serialized()
        }
        request.headers += headers
        return request
    }
}

/// A successful answer.
public struct APIResponse {
    public let head: HTTPResponseHead
    public let body: [UInt8]

    /// The body parsed as JSON; a body that is not JSON means tund is not what answered.
    public func json() throws(HTTPClientError) -> JSONValue {
        do {
            return try JSONValue.parse(body)
        } catch {
            throw .malformed("the answer to a request is not JSON (\(head.status) \(head.header("Content-Type") ?? "no Content-Type"))")
        }
    }

    /// The body as compact JSON text ending in a newline, exactly as tund sent it, for `--json`.
    public var jsonLine: [UInt8] {
        var line = body
        while let last = line.last, last == 0x0a || last == 0x0d || last == 0x20 { line.removeLast() }
        line.append(0x0a)
        return line
    }
}

/// tund's error answer: `{"error": {"code", "message", "field"?, "errno"?}}` with a non-2xx status.
/// An answer that is not in this form (a proxy's page, say) keeps the status and shows the body's start.
public struct ServerError: Error {
    public let status: Int
    public let code: String
    public let message: String
    public let field: String?
    public let errno: String?
    /// The body as received, printed on standard output with `--json`.
    public let body: [UInt8]
    /// Advice the command adds for this failure (`give --recreate ...`), printed as a note.
    public var hint: String? = nil

    public init(head: HTTPResponseHead, body: [UInt8]) {
        status = head.status
        self.body = body
        let error = (try? JSONValue.parse(body))?["error"]
        if let code = error?["code"]?.stringValue, let message = error?["message"]?.stringValue {
            self.code = code
            self.message = message
            field = error?["field"]?.stringValue
            errno = error?["errno"]?.stringValue
        } else {
            code = "http_\(head.status)"
            let text = String(decoding: body.prefix(200), as: UTF8.self).trimmingWhitespace()
            message = "HTTP \(head.status) \(head.reason)" + (text.isEmpty ? "" : ": \(text)")
            field = nil
            errno = nil
        }
    }

    /// `<message> (<code>[, field <field>][, errno <errno>])`
    public var summary: String {
        var details = [code]
        if let field { details.append("field \(field)") }
        if let errno { details.append("errno \(errno)") }
        return "\(message) (\(details.joined(separator: ", ")))"
    }
}
