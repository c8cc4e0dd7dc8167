/// Matches method and path to a handler. Patterns are `/`-separated literals and `{parameter}`
/// segments; a parameter matches one percent-decoded segment.
public struct Router: Sendable {
    public typealias Handler = @Sendable (HTTPRequest, PathParameters) -> HTTPResponse

    private struct Route: Sendable {
        let method: String
        let pattern: String
        let segments: [Segment]
        let handler: Handler
    }

    private enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
    }

    public enum Match {
        /// The handler, its parameters, and the route's pattern (a bounded label for metrics and logs).
        case handler(Handler, PathParameters, pattern: String)
        /// The path exists with other methods: answer 405 with `Allow`.
        case methodNotAllowed(allowed: [String])
        case notFound
        /// A segment had a malformed percent escape.
        case badPath
    }

    private var routes: [Route] = []

    public init() {}

    public mutating func add(_ method: String, _ pattern: String, _ handler: @escaping Handler) {
        let segments = pattern.split(separator: "/").map { part -> Segment in
            part.first == "{" && part.last == "}" ? .parameter(String(part.dropFirst().dropLast())) : .literal(String(part))
        }
        routes.append(Route(method: method, pattern: pattern, segments: segments, handler: handler))
    }

    /// Every (method, pattern) pair, e.g. ("GET", "/devices/{name}"), for checking against the spec.
    public var endpoints: [(method: String, pattern: String)] { routes.map { ($0.method, $0.pattern) } }

    public func match(method: String, path: String) -> Match {
        // Empty segments are not collapsed: "/devices//stats" is not "/devices/stats".
        var parts = path.split(separator: "/", omittingEmptySubsequences: false)
        if parts.first == "" { parts.removeFirst() }
        if parts.last == "" && parts.count > 1 { parts.removeLast() }
        var decoded: [String] = []
        for part in parts {
            guard let segment = percentDecode(part) else { return .badPath }
            decoded.append(segment)
        }
        var allowed: [String] = []
        for route in routes {
            guard let parameters = Self.bind(route.segments, decoded) else { continue }
            if route.method == method { return .handler(route.handler, parameters, pattern: route.pattern) }
            if !allowed.contains(route.method) { allowed.append(route.method) }
        }
        return allowed.isEmpty ? .notFound : .methodNotAllowed(allowed: allowed)
    }

    private static func bind(_ segments: [Segment], _ parts: [String]) -> PathParameters? {
        guard segments.count == parts.count else { return nil }
        var values: [String: String] = [:]
        for (segment, part) in zip(segments, parts) {
            switch segment {
            case .literal(let literal): guard literal == part else { return nil }
            case .parameter(let name):
                guard !part.isEmpty else { return nil }
                values[name] = part
            }
        }
        return PathParameters(values: values)
    }
}

/// The `{parameter}` values of a matched path, percent-decoded.
public struct PathParameters: Sendable, Equatable {
    public let values: [String: String]

    public subscript(name: String) -> String { values[name] ?? "" }
}
