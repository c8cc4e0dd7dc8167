#if canImport(Glibc)
import Glibc
#endif
import BackgroundThread
import TundJSON
import Logging
import TundCore
import TundHTTP
import PercentEncoding

/// The HTTP API: routes, thin handlers over `DeviceManager`, and the request log.
/// Each handler parses, calls the fleet once, and renders; errors become `APIError` once.
public struct TundAPI: Sendable {
    public let router: Router
    private let logger: Logger
    private let requestLog: any RequestLog
    private let eventStreams: EventStreams
    private let requestMetrics: RequestMetrics
    private let token: [UInt8]?

    /// `token`: when set, every endpoint but the probes (`/healthz`, `/readyz`) requires
    /// `Authorization: Bearer <token>`. Probes cannot carry a secret (a kubelet's httpGet, a load
    /// balancer's health check) and reveal nothing but "alive" and "ready".
    /// `requestLog`: where the line of each answered request goes; by default `logger`, at info.
    public init(fleet: DeviceFleet, logger: Logger, token: String? = nil, requestLog: (any RequestLog)? = nil) {
        self.logger = logger
        self.requestLog = requestLog ?? LoggerRequestLog(logger: logger)
        self.token = token.map { Array($0.utf8) }
        let streams = EventStreams(log: fleet.events)
        eventStreams = streams
        let requests = RequestMetrics()
        requestMetrics = requests
        var router = Router()
        router.add("GET", "/healthz") { _, _ in jsonResponse(200, .object([("status", .string("ok"))])) }
        router.add("GET", "/readyz") { _, _ in
            fleet.isReady ? jsonResponse(200, .object([("status", .string("ready"))])) : APIError(TundError.notReady).response
        }
        router.add("GET", "/devices") { request, _ in
            var (devices, tag) = fleet.listTagged()
            // ?netns=NAME: the devices of one namespace, however they name it; an empty value: tund's own.
            if let netns = request.query["netns"] {
                let key = netns.isEmpty ? nil : DeviceSpec.namespaceKey(netns)
                devices = devices.filter { DeviceSpec.namespaceKey($0.record.spec.netns) == key }
            }
            return jsonResponse(200, .object([("devices", .array(devices.map(DeviceJSON.device)))]), headers: [("ETag", tag)])
        }
        router.add("PUT", "/devices") { request, _ in
            handle {
                let specs = try DeviceRequest.decodeSet(try jsonBody(request))
                let dryRun = try booleanQuery(request, "dry_run"), recreate = try booleanQuery(request, "recreate")
                let (plan, tag) = try fleet.apply(specs, dryRun: dryRun, allowRecreate: recreate, ifMatch: collectionIfMatch(request))
                return jsonResponse(200, .object([
                    ("dry_run", .bool(dryRun)), ("create", names(plan.create)), ("update", names(plan.update)),
                    ("recreate", names(plan.recreate)), ("delete", names(plan.delete)), ("unchanged", names(plan.unchanged)),
                ]), headers: [("ETag", tag)])
            }
        }
        router.add("POST", "/devices") { request, _ in
            handle {
                let spec = try DeviceRequest.decode(try jsonBody(request))
                let key = try idempotencyKey(request)
                let (created, replayed) = try fleet.create(spec, idempotencyKey: key)
                var headers = [("Location", "/devices/\(created.record.name)"), etag(created)]
                if replayed { headers.append(("Idempotent-Replayed", "true")) }
                return jsonResponse(201, DeviceJSON.device(created), headers: headers)
            }
        }
        router.add("GET", "/devices/{name}") { _, path in
            handle {
                let device = try fleet.get(path["name"])
                return jsonResponse(200, DeviceJSON.device(device), headers: [etag(device)])
            }
        }
        router.add("PATCH", "/devices/{name}") { request, path in
            handle {
                let patch = try DeviceRequest.decodePatch(try jsonBody(request))
                let device = try fleet.update(path["name"], patch, ifMatch: try ifMatch(request))
                return jsonResponse(200, DeviceJSON.device(device), headers: [etag(device)])
            }
        }
        router.add("DELETE", "/devices/{name}") { request, path in
            handle {
                try fleet.delete(path["name"], ifMatch: try ifMatch(request))
                return HTTPResponse(status: 204)
            }
        }
        router.add("GET", "/devices/{name}/stats") { _, path in
            handle { jsonResponse(200, bytes: DeviceJSON.statistics(try fleet.statistics(path["name"]))) }
        }
        router.add("POST", "/devices/{name}/addresses") { request, path in
            handle {
                let prefix = try DeviceRequest.decodeAddress(try jsonBody(request))
                let device = try fleet.addAddress(path["name"], prefix, ifMatch: try ifMatch(request))
                let location = "/devices/\(device.record.name)/addresses/\(prefix.address)"
                return jsonResponse(201, .object([("address", .string(prefix.description))]), headers: [("Location", location), etag(device)])
            }
        }
        router.add("DELETE", "/devices/{name}/addresses/{address}") { request, path in
            handle {
                let device = try fleet.deleteAddress(path["name"], path["address"], ifMatch: try ifMatch(request))
                return HTTPResponse(status: 204, headers: [etag(device)])
            }
        }
        router.add("POST", "/devices/{name}/routes") { request, path in
            handle {
                let route = try DeviceRequest.decodeRoute(try jsonBody(request))
                let device = try fleet.addRoute(path["name"], route, ifMatch: try ifMatch(request))
                let created = device.record.routes.last!
                let location = "/devices/\(device.record.name)/routes/\(created.id)"
                return jsonResponse(201, DeviceJSON.route(created, active: device.activeRouteIDs.contains(created.id)),
                                    headers: [("Location", location), etag(device)])
            }
        }
        router.add("DELETE", "/devices/{name}/routes/{id}") { request, path in
            handle {
                guard let id = canonicalInteger(Substring(path["id"])), id > 0 else {
                    throw APIError(status: 404, code: "route_not_found", message: "route ids are positive integers, got \(path["id"].prefix(32))")
                }
                let device = try fleet.deleteRoute(path["name"], id: id, ifMatch: try ifMatch(request))
                return HTTPResponse(status: 204, headers: [etag(device)])
            }
        }
        router.add("POST", "/devices/{name}/peers") { request, path in
            handle {
                let peer = try WireGuardJSON.peer(try jsonBody(request), field: nil)
                let device = try fleet.putPeer(path["name"], peer, creating: true, ifMatch: try ifMatch(request))
                let location = "/devices/\(device.record.name)/peers/\(percentEncode(WireGuardJSON.base64(peer.publicKey)))"
                return jsonResponse(201, WireGuardJSON.peerJSON(peer), headers: [("Location", location), etag(device)])
            }
        }
        router.add("PATCH", "/devices/{name}/peers/{public_key}") { request, path in
            handle {
                let key = try peerKey(path["public_key"])
                var body = try jsonBody(request)
                // The key is the path's; a body may repeat it, not change it.
                if case .object(var members) = body {
                    if let given = members.first(where: { $0.0 == "public_key" })?.1, given != .string(WireGuardJSON.base64(key)) {
                        throw APIError(status: 422, code: "invalid_field", message: "public_key: a peer's key cannot change; delete it and add the new one", field: "public_key")
                    }
                    members.removeAll { $0.0 == "public_key" }
                    members.append(("public_key", .string(WireGuardJSON.base64(key))))
                    body = .object(members)
                }
                let peer = try WireGuardJSON.peer(body, field: nil)
                let device = try fleet.putPeer(path["name"], peer, creating: false, ifMatch: try ifMatch(request))
                return jsonResponse(200, WireGuardJSON.peerJSON(peer), headers: [etag(device)])
            }
        }
        router.add("DELETE", "/devices/{name}/peers/{public_key}") { request, path in
            handle {
                let device = try fleet.deletePeer(path["name"], publicKey: try peerKey(path["public_key"]), ifMatch: try ifMatch(request))
                return HTTPResponse(status: 204, headers: [etag(device)])
            }
        }
        router.add("GET", "/events") { request, _ in streams.open(request) }
        router.add("GET", "/devices/{name}/capture") { request, path in
            handle { try capture(fleet, path["name"], request) }
        }
        router.add("GET", "/metrics") { _, _ in
            let body = DeviceMetrics.render(fleet: fleet, requests: requests, eventStreams: streams.openCount)
            return HTTPResponse(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")], body: body)
        }
        self.router = router
    }

    /// The probes, answered without a token.
    static let anonymousRoutes: Set<String> = ["/healthz", "/readyz"]

    /// Ends every event stream; call before stopping the HTTP server.
    public func closeEventStreams() { eventStreams.closeAll() }

    /// Routes one request and logs it: method, path, status, duration.
    public func respond(to request: HTTPRequest) -> HTTPResponse {
        let started = monotonicNanoseconds()
        let response: HTTPResponse
        var route: (number: Int, pattern: String)?
        switch router.match(method: request.method, path: request.path) {
        case .handler(_, _, let pattern, let number) where !authorized(request) && !Self.anonymousRoutes.contains(pattern):
            route = (number, pattern)
            response = APIError.unauthorized.response
        case .handler(let handler, let parameters, let pattern, let number):
            route = (number, pattern)
            response = handler(request, parameters)
        case .methodNotAllowed(let allowed): response = APIError.methodNotAllowed(request.method, allowed: allowed).response
        case .notFound: response = APIError.notFound(request.path).response
        case .badPath: response = APIError(status: 400, code: "invalid_path", message: "the path has a malformed percent escape").response
        }
        let seconds = Double(monotonicNanoseconds() &- started) / 1e9
        requestMetrics.record(method: request.method, route: route, status: response.status, seconds: seconds)
        // The path is logged as sent but bounded: a hostile client must not be able to write megabytes of log.
        requestLog.record(method: bounded(request.method, 16), path: bounded(request.path, 256), status: response.status,
                          microseconds: Int64((seconds * 1e6).rounded()))
        return response
    }

    /// True without a configured token, or when the request carries it. The comparison takes the same
    /// time wherever the first difference is, so response timing does not leak the token.
    private func authorized(_ request: HTTPRequest) -> Bool {
        guard let token else { return true }
        guard let header = request.headers["authorization"], header.utf8.count > 7,
              header.prefix(7).lowercased() == "bearer " else { return false }
        return constantTimeEqual(Array(header.utf8.dropFirst(7)), token)
    }

    /// The 413 answer for the HTTP server's body limit, in the API's error format.
    public static func payloadTooLarge(limit: Int) -> HTTPResponse { APIError.payloadTooLarge(limit: limit).response }

    /// The 503 answer on a connection past `--max-connections`; the connection closes after it.
    public static func tooManyConnections(limit: Int) -> HTTPResponse {
        var error = APIError(status: 503, code: "too_many_connections",
                             message: "tund serves at most \(limit) connections at once (--max-connections); try again shortly")
        error.headers["Retry-After"] = "1"
        error.headers["Connection"] = "close"
        return error.response
    }

    /// The answer to a request refused from its head: stable codes, statuses as RFC 9110 and 9112 say.
    public static func rejected(_ rejection: HeadRejection) -> HTTPResponse {
        switch rejection {
        case .ambiguousFraming(let reason): APIError(status: 400, code: "ambiguous_framing", message: reason).response
        case .malformedHeader(let reason): APIError(status: 400, code: "malformed_header", message: reason).response
        case .invalidHost(let reason): APIError(status: 400, code: "invalid_host", message: reason).response
        case .foreignHost(let reason):
            APIError(status: 421, code: "misdirected_request", message: reason + "; without a token tund answers only to its listen address, localhost, 127.0.0.1 and [::1]").response
        case .foreignOrigin(let reason):
            APIError(status: 403, code: "forbidden_origin", message: reason + "; without a token tund serves no web page but its own").response
        }
    }

    /// The 400 answer for a request the HTTP server refuses before routing.
    public static func badRequest(_ reason: String) -> HTTPResponse {
        APIError(status: 400, code: "invalid_path", message: reason).response
    }
}

/// At most `limit` characters of `text`; a text of no more bytes than that is whole, without walking it
/// character by character.
private func bounded(_ text: String, _ limit: Int) -> Substring {
    text.utf8.count <= limit ? Substring(text) : text.prefix(limit)
}

/// Runs a handler body, turning thrown domain and API errors into their responses.
private func handle(_ body: () throws -> HTTPResponse) -> HTTPResponse {
    do {
        return try body()
    } catch let error as APIError {
        return error.response
    } catch let error as TundError {
        return APIError(error).response
    } catch {
        return APIError(status: 500, code: "internal_error", message: "\(error)").response
    }
}

/// `GET /devices/{name}/capture?count=N&timeout=S`: a pcap stream of what the worker reads.
private func capture(_ fleet: DeviceFleet, _ name: String, _ request: HTTPRequest) throws -> HTTPResponse {
    func number(_ key: String, default value: Int) throws -> Int {
        guard let text = request.query[key] else { return value }
        guard let parsed = Int(text) else {
            throw APIError(status: 422, code: "invalid_field", message: "\(key): must be an integer, got \(text.prefix(32))", field: key)
        }
        return parsed
    }
    let count = try number("count", default: 100)
    let timeout = try number("timeout", default: 10)
    let stream = HTTPStream(capacity: 8 << 20)
    let session = try fleet.capture(name, limit: count, timeoutSeconds: timeout,
                                      sink: { stream.send($0) }, onFinish: { stream.finish() })
    stream.onClose { session.finish() }
    let fileName = "\(name)-\(count).pcap"
    return HTTPResponse(status: 200, headers: [
        ("Content-Type", "application/vnd.tcpdump.pcap"), ("Content-Disposition", "attachment; filename=\"\(fileName)\""),
        ("Cache-Control", "no-store"),
    ], stream: stream)
}

private func names(_ list: [String]) -> JSONValue { .array(list.map(JSONValue.string)) }

/// `?NAME=true|false` (absent: false); anything else is a 400 naming the parameter.
private func booleanQuery(_ request: HTTPRequest, _ name: String) throws -> Bool {
    switch request.query[name] {
    case nil, "false"?, "0"?: return false
    case "true"?, "1"?, ""?: return true
    case let other?: throw APIError(status: 400, code: "invalid_query", message: "?\(name) must be true or false, got \(other.prefix(32))")
    }
}

/// The collection tags an `If-Match` header accepts, as sent (quotes included): nil for none or `*`.
private func collectionIfMatch(_ request: HTTPRequest) -> Set<String>? {
    guard let header = request.headers["if-match"]?.trimmingSpaces(), !header.isEmpty, header != "*" else { return nil }
    return Set(header.split(separator: ",").map { String($0.trimmingSpaces()) })
}

/// A peer's public key from its path segment: base64, with `/`, `+` and `=` percent-encoded.
private func peerKey(_ segment: String) throws -> [UInt8] {
    guard let key = WireGuardJSON.pathKey(segment) else {
        throw APIError(status: 404, code: "peer_not_found", message: "a peer is named by its public key in base64 (percent-encoded in the path)")
    }
    return key
}

/// The device's ETag: its generation, as a strong entity tag.
private func etag(_ device: DeviceSnapshot) -> (String, String) { ("ETag", "\"\(device.record.generation)\"") }

/// The generations an `If-Match` header accepts: nil for none or `*`. Tags that are not ours
/// (malformed, weak-and-foreign) can match nothing, so a header made only of them is stale by definition.
private func ifMatch(_ request: HTTPRequest) throws -> Set<Int64>? {
    guard let header = request.headers["if-match"]?.trimmingSpaces(), !header.isEmpty, header != "*" else { return nil }
    return Set(header.split(separator: ",").compactMap { part in
        var tag = part.drop { $0 == " " }
        while tag.last == " " { tag = tag.dropLast() }
        if tag.hasPrefix("W/") { tag = tag.dropFirst(2) }
        guard tag.count >= 2, tag.hasPrefix("\""), tag.hasSuffix("\"") else { return nil }
        return canonicalInteger(tag.dropFirst().dropLast())
    })
}

/// A decimal integer written the one way tund writes it: entity tags and ids compare as text, so
/// "01" and "+1" are not "1".
private func canonicalInteger(_ text: Substring) -> Int64? {
    guard let value = Int64(text), String(value) == text else { return nil }
    return value
}

/// `Idempotency-Key`: 1 to 255 printable ASCII characters.
private func idempotencyKey(_ request: HTTPRequest) throws -> String? {
    guard let key = request.headers["idempotency-key"] else { return nil }
    guard (1...255).contains(key.utf8.count), key.utf8.allSatisfy({ (0x21...0x7e).contains($0) }) else {
        throw APIError(status: 400, code: "invalid_idempotency_key", message: "Idempotency-Key must be 1 to 255 printable ASCII characters")
    }
    return key
}

/// The request body as JSON, after checking that it was declared as JSON.
private func jsonBody(_ request: HTTPRequest) throws -> JSONValue {
    guard request.mediaType == "application/json" else { throw APIError.unsupportedMediaType(request.headers["content-type"]) }
    do {
        return try JSONValue.parse(request.body)
    } catch {
        guard case .invalid(let message) = error else { throw error }
        throw APIError(status: 400, code: "invalid_json", message: message)
    }
}

/// Compares two byte strings in time that depends only on their lengths.
func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
    for index in 0..<max(a.count, b.count) {
        difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
    }
    return difference == 0
}
