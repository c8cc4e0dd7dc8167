import Errno
import TundJSON
import TundCore
import TundHTTP

/// An error answer: status, stable machine-readable code, and a message that says what is wrong.
/// Body: `{"error": {"code": "...", "message": "...", "field": "...", "errno": "..."}}`.
public struct APIError: Error, Sendable, Equatable {
    public let status: Int
    public let code: String
    public let message: String
    public var field: String?
    public var errno: String?
    public var headers: [String: String] = [:]

    public init(status: Int, code: String, message: String, field: String? = nil, errno: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.errno = errno
    }

    /// The one place where domain errors become HTTP statuses and codes.
    public init(_ error: TundError) {
        switch error {
        case .invalidRequest(let message):
            self.init(status: 400, code: "invalid_request", message: message)
        case .invalidField(let field, let reason):
            self.init(status: 422, code: "invalid_field", message: "\(field): \(reason)", field: field)
        case .deviceExists:
            self.init(status: 409, code: "device_exists", message: error.description)
        case .nameInUse:
            self.init(status: 409, code: "name_in_use", message: error.description)
        case .deviceNotFound:
            self.init(status: 404, code: "device_not_found", message: error.description)
        case .kernelRejected(let kernel):
            // EEXIST: a route or address another device holds already; EADDRINUSE: a tunnel's port is taken.
            self.init(status: [Errno.EEXIST, .EADDRINUSE].contains(kernel.errno) ? 409 : 422, code: "kernel_rejected",
                      message: error.description, errno: kernel.errnoName)
        case .permissionDenied(let kernel):
            self.init(status: 500, code: "permission_denied", message: error.description, errno: kernel.errnoName)
        case .kernelFailed(let kernel):
            self.init(status: 500, code: "kernel_error", message: error.description, errno: kernel.errnoName)
        case .storageFailed:
            self.init(status: 500, code: "storage_error", message: error.description)
        case .notReady:
            self.init(status: 503, code: "not_ready", message: error.description)
            headers["Retry-After"] = "1"
        case .preconditionFailed(_, let current):
            self.init(status: 412, code: "precondition_failed", message: error.description)
            headers["ETag"] = "\"\(current)\""
        case .addressNotFound:
            self.init(status: 404, code: "address_not_found", message: error.description)
        case .routeNotFound:
            self.init(status: 404, code: "route_not_found", message: error.description)
        case .idempotencyKeyReused:
            self.init(status: 422, code: "idempotency_key_reused", message: error.description)
        case .deviceLimitReached:
            self.init(status: 409, code: "device_limit_reached", message: error.description)
        case .notLiveChangeable(let field, _):
            self.init(status: 422, code: "not_live_changeable", message: error.description, field: field)
        case .collectionChanged(let current):
            self.init(status: 412, code: "precondition_failed", message: error.description)
            headers["ETag"] = current
        case .peerExists:
            self.init(status: 409, code: "peer_exists", message: error.description)
        case .peerNotFound:
            self.init(status: 404, code: "peer_not_found", message: error.description)
        case .notWireGuard:
            self.init(status: 409, code: "not_wireguard", message: error.description)
        case .namespaceNotFound:
            self.init(status: 422, code: "namespace_not_found", message: error.description, field: "netns")
        case .namespaceMissing:
            self.init(status: 409, code: "namespace_missing", message: error.description)
        }
    }

    static var unauthorized: APIError {
        var error = APIError(status: 401, code: "unauthorized", message: "this endpoint needs an Authorization: Bearer token")
        error.headers["WWW-Authenticate"] = "Bearer realm=\"tund\""
        return error
    }

    static func notFound(_ path: String) -> APIError {
        APIError(status: 404, code: "not_found", message: "no such endpoint: \(path)")
    }

    static func methodNotAllowed(_ method: String, allowed: [String]) -> APIError {
        var error = APIError(status: 405, code: "method_not_allowed",
                             message: "method \(method) is not allowed here; allowed: \(allowed.joined(separator: ", "))")
        error.headers["Allow"] = allowed.joined(separator: ", ")
        return error
    }

    static func payloadTooLarge(limit: Int) -> APIError {
        APIError(status: 413, code: "payload_too_large", message: "the request body exceeds the limit of \(limit) bytes")
    }

    static func unsupportedMediaType(_ type: String?) -> APIError {
        APIError(status: 415, code: "unsupported_media_type",
                 message: "the body must be sent as Content-Type: application/json" + (type.map { ", got \($0)" } ?? ""))
    }

    var response: HTTPResponse {
        var fields: [(String, JSONValue)] = [("code", .string(code)), ("message", .string(message))]
        if let field { fields.append(("field", .string(field))) }
        if let errno { fields.append(("errno", .string(errno))) }
        var response = jsonResponse(status, .object([("error", .object(fields))]))
        response.headers += headers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        return response
    }
}

func jsonResponse(_ status: Int, _ body: JSONValue, headers: [(String, String)] = []) -> HTTPResponse {
    jsonResponse(status, bytes: body.serialized(), headers: headers)
}

private let jsonContentType = [("Content-Type", "application/json")]

/// A JSON answer already written (`JSONWriter`); the newline is added here, as for every answer.
func jsonResponse(_ status: Int, bytes: consuming [UInt8], headers: [(String, String)] = []) -> HTTPResponse {
    var body = bytes
    body.append(0x0a)
    return HTTPResponse(status: status, headers: headers.isEmpty ? jsonContentType : jsonContentType + headers, body: body)
}
