import TundJSON

/// tund's HTTP API as tundctl uses it: JSON request bodies, the bearer token on every request, and
/// error answers (any non-2xx status) thrown as `ServerError`.
struct APIClient {
    let http: HTTPClient
    /// Sent as `Authorization: Bearer <token>` when set.
    let token: String?
    /// Seconds to wait for connecting and for each read; 0 waits for ever.
    let timeout: Double

    var server: ServerAddress { http.server }

    /// A request that expects a complete answer. `json` becomes the body (`application/json`).
    func send(_ method: String, _ path: String, json: JSONValue? = nil, headers: [(name: String, value: String)] = []) throws -> APIResponse {
        let response = try http.exchange(request(method, path, json: json, headers: headers), timeout: timeout)
        guard response.head.isSuccess else { throw ServerError(head: response.head, body: response.body) }
        return APIResponse(head: response.head, body: response.body)
    }

    func get(_ path: String) throws -> APIResponse { try send("GET", path) }

    /// A GET whose body is read as it arrives. `streamTimeout` bounds each wait for body data after the
    /// head (0: for ever). An error answer is read whole and thrown as `ServerError`.
    func openStream(_ path: String, headers: [(name: String, value: String)] = [], streamTimeout: Double) throws -> (HTTPResponseHead, HTTPResponseReader) {
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
struct APIResponse {
    let head: HTTPResponseHead
    let body: [UInt8]

    /// The body parsed as JSON; a body that is not JSON means tund is not what answered.
    func json() throws(HTTPClientError) -> JSONValue {
        do {
            return try JSONValue.parse(body)
        } catch {
            throw .malformed("the answer to a request is not JSON (\(head.status) \(head.header("Content-Type") ?? "no Content-Type"))")
        }
    }

    /// The body as compact JSON text ending in a newline, exactly as tund sent it, for `--json`.
    var jsonLine: [UInt8] {
        var line = body
        while let last = line.last, last == 0x0a || last == 0x0d || last == 0x20 { line.removeLast() }
        line.append(0x0a)
        return line
    }
}

/// tund's error answer: `{"error": {"code", "message", "field"?, "errno"?}}` with a non-2xx status.
/// An answer that is not in this form (a proxy's page, say) keeps the status and shows the body's start.
struct ServerError: Error {
    let status: Int
    let code: String
    let message: String
    let field: String?
    let errno: String?
    /// The body as received, printed on standard output with `--json`.
    let body: [UInt8]
    /// Advice the command adds for this failure (`give --recreate ...`), printed as a note.
    var hint: String? = nil

    init(head: HTTPResponseHead, body: [UInt8]) {
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

    /// Lines printed after the error as `note: ...`: what a failed `PUT /devices` had applied before it
    /// failed (the error's `applied` object), then the command's hint.
    var notes: [String] {
        let applied = PlanText.appliedBeforeFailure((try? JSONValue.parse(body))?["error"])
        return [applied, hint].compactMap { $0 }
    }

    /// `<message> (<code>[, field <field>][, errno <errno>])`
    var summary: String {
        var details = [code]
        if let field { details.append("field \(field)") }
        if let errno { details.append("errno \(errno)") }
        return "\(message) (\(details.joined(separator: ", ")))"
    }
}
