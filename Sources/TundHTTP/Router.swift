#if canImport(Glibc)
import Glibc
#endif

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
    /// Each route's number of segments, in the same order: a path is compared only with the routes of its
    /// length, without touching (and reference-counting) the others.
    private var segmentCounts: [Int] = []

    public init() {}

    public mutating func add(_ method: String, _ pattern: String, _ handler: @escaping Handler) {
        let segments = pattern.split(separator: "/").map { part -> Segment in
            part.first == "{" && part.last == "}" ? .parameter(String(part.dropFirst().dropLast())) : .literal(String(part))
        }
        routes.append(Route(method: method, pattern: pattern, segments: segments, handler: handler))
        segmentCounts.append(segments.count)
    }

    /// Every (method, pattern) pair, e.g. ("GET", "/devices/{name}"), for checking against the spec.
    public var endpoints: [(method: String, pattern: String)] { routes.map { ($0.method, $0.pattern) } }

    public func match(method: String, path: String) -> Match {
        var text = path
        // Most paths have no escape and a few segments: matched on the bytes where they are, without
        // building a list of decoded segments that every request would pay for.
        let unescaped: Match? = text.withUTF8 { bytes in
            guard !bytes.contains(UInt8(ascii: "%")) else { return nil }
            return withUnsafeTemporaryAllocation(of: Range<Int>.self, capacity: Self.segmentLimit) { ranges -> Match? in
                guard let count = Self.segments(of: bytes, into: ranges) else { return nil }
                let parts = UnsafeBufferPointer(rebasing: ranges[..<count])
                var allowed: [String] = []
                for index in segmentCounts.indices where segmentCounts[index] == count {
                    let route = routes[index]
                    guard Self.matches(route.segments, bytes, parts) else { continue }
                    if route.method == method {
                        let parameters = zip(route.segments, parts).compactMap { segment, range -> (name: String, value: String)? in
                            guard case .parameter(let name) = segment else { return nil }
                            return (name, String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self))
                        }
                        return .handler(route.handler, PathParameters(values: parameters), pattern: route.pattern)
                    }
                    if !allowed.contains(route.method) { allowed.append(route.method) }
                }
                return allowed.isEmpty ? .notFound : .methodNotAllowed(allowed: allowed)
            }
        }
        return unescaped ?? matchDecoding(method: method, path: path)
    }

    /// More segments than this take the general path.
    private static let segmentLimit = 8

    /// The ranges of `path`'s `/`-separated segments, as `matchDecoding` splits it; nil past the limit.
    private static func segments(of path: UnsafeBufferPointer<UInt8>, into ranges: UnsafeMutableBufferPointer<Range<Int>>) -> Int? {
        var count = 0
        var start = 0
        for index in 0...path.count where index == path.count || path[index] == UInt8(ascii: "/") {
            guard count < ranges.count else { return nil }
            ranges[count] = start..<index
            count += 1
            start = index + 1
        }
        var first = 0
        if ranges[0].isEmpty { first = 1 }
        if count - first > 1 && ranges[count - 1].isEmpty { count -= 1 }
        if first == 1 {
            for index in 0..<(count - 1) { ranges[index] = ranges[index + 1] }
            count -= 1
        }
        return count
    }

    private static func matches(_ segments: [Segment], _ path: UnsafeBufferPointer<UInt8>, _ parts: UnsafeBufferPointer<Range<Int>>) -> Bool {
        guard segments.count == parts.count else { return false }
        for index in segments.indices {
            let part = UnsafeBufferPointer(rebasing: path[parts[index]])
            switch segments[index] {
            case .literal(let literal):
                var literal = literal
                guard literal.utf8.count == part.count,
                      part.isEmpty || literal.withUTF8({ memcmp($0.baseAddress!, part.baseAddress!, part.count) == 0 }) else { return false }
            case .parameter: if part.isEmpty { return false }
            }
        }
        return true
    }

    /// The general case: every segment percent-decoded first.
    private func matchDecoding(method: String, path: String) -> Match {
        // Empty segments are not collapsed: "/devices//stats" is not "/devices/stats".
        var parts = path.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        if parts.first?.isEmpty == true { parts.removeFirst() }
        if parts.last?.isEmpty == true && parts.count > 1 { parts.removeLast() }
        var decoded: [String] = []
        decoded.reserveCapacity(parts.count)
        for part in parts {
            guard let segment = percentDecode(Substring(part)) else { return .badPath }
            decoded.append(segment)
        }
        // Literals are compared before anything is bound: a request tries every route, and only the one
        // that matches should cost an allocation.
        var allowed: [String] = []
        for route in routes where Self.matches(route.segments, decoded) {
            if route.method == method { return .handler(route.handler, Self.bind(route.segments, decoded), pattern: route.pattern) }
            if !allowed.contains(route.method) { allowed.append(route.method) }
        }
        return allowed.isEmpty ? .notFound : .methodNotAllowed(allowed: allowed)
    }

    private static func matches(_ segments: [Segment], _ parts: [String]) -> Bool {
        guard segments.count == parts.count else { return false }
        for index in segments.indices {
            switch segments[index] {
            case .literal(let literal): if literal != parts[index] { return false }
            case .parameter: if parts[index].isEmpty { return false }
            }
        }
        return true
    }

    private static func bind(_ segments: [Segment], _ parts: [String]) -> PathParameters {
        var values: [(name: String, value: String)] = []
        for (segment, part) in zip(segments, parts) {
            if case .parameter(let name) = segment { values.append((name, part)) }
        }
        return PathParameters(values: values)
    }
}

/// The `{parameter}` values of a matched path, percent-decoded.
public struct PathParameters: Sendable, Equatable {
    /// In the pattern's order; a pattern has one or two, so a scan beats hashing.
    public let values: [(name: String, value: String)]

    public subscript(name: String) -> String { values.first { $0.name == name }?.value ?? "" }

    public static func == (lhs: PathParameters, rhs: PathParameters) -> Bool {
        lhs.values.elementsEqual(rhs.values) { $0.name == $1.name && $0.value == $1.value }
    }
}
