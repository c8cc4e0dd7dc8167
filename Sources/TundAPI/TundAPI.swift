import Logging
import TundCore
import TundHTTP

/// The HTTP API: routes, thin handlers over `DeviceManager`, and the request log.
/// Each handler parses, calls the manager once, and renders; errors become `APIError` once.
public struct TundAPI: Sendable {
    public let router: Router
    private let logger: Logger

    public init(manager: DeviceManager, logger: Logger) {
        self.logger = logger
        var router = Router()
        router.add("GET", "/healthz") { _, _ in jsonResponse(200, .object([("status", .string("ok"))])) }
        router.add("GET", "/readyz") { _, _ in
            manager.isReady ? jsonResponse(200, .object([("status", .string("ready"))])) : APIError(TundError.notReady).response
        }
        router.add("GET", "/devices") { _, _ in
            jsonResponse(200, .object([("devices", .array(manager.list().map(DeviceJSON.device)))]))
        }
        router.add("POST", "/devices") { request, _ in
            handle {
                let spec = try DeviceRequest.decode(try jsonBody(request))
                let created = try manager.create(spec)
                return jsonResponse(201, DeviceJSON.device(created), headers: [("Location", "/devices/\(created.record.name)")])
            }
        }
        router.add("GET", "/devices/{name}") { _, path in
            handle { jsonResponse(200, DeviceJSON.device(try manager.get(path["name"]))) }
        }
        router.add("DELETE", "/devices/{name}") { _, path in
            handle {
                try manager.delete(path["name"])
                return HTTPResponse(status: 204)
            }
        }
        router.add("GET", "/devices/{name}/stats") { _, path in
            handle { jsonResponse(200, DeviceJSON.statistics(try manager.statistics(path["name"]))) }
        }
        self.router = router
    }

    /// Routes one request and logs it: method, path, status, duration.
    public func respond(to request: HTTPRequest) -> HTTPResponse {
        let started = ContinuousClock.now
        let response: HTTPResponse
        switch router.match(method: request.method, path: request.path) {
        case .handler(let handler, let parameters): response = handler(request, parameters)
        case .methodNotAllowed(let allowed): response = APIError.methodNotAllowed(request.method, allowed: allowed).response
        case .notFound: response = APIError.notFound(request.path).response
        case .badPath: response = APIError(status: 400, code: "invalid_path", message: "the path has a malformed percent escape").response
        }
        let elapsed = ContinuousClock.now - started
        let milliseconds = Double(elapsed.components.attoseconds / 1_000_000_000_000) / 1000 + Double(elapsed.components.seconds) * 1000
        logger.info("request", metadata: [
            "method": "\(request.method)", "path": "\(request.path)", "status": "\(response.status)",
            "duration_ms": "\(milliseconds)",
        ])
        return response
    }

    /// The 413 answer for the HTTP server's body limit, in the API's error format.
    public static func payloadTooLarge(limit: Int) -> HTTPResponse { APIError.payloadTooLarge(limit: limit).response }
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
