#if canImport(Glibc)
import Glibc
#endif
import PercentEncoding

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
        /// Its bytes, compared with a path's as they are.
        case literal([UInt8])
        case parameter(String)
    }

    public enum Match {
        /// The handler, its parameters, the route's pattern (a bounded label for metrics and logs), and
        /// its number (the order it was added in, from 0).
        case handler(Handler, PathParameters, pattern: String, number: Int)
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
            part.first == "{" && part.last == "}" ? .parameter(String(part.dropFirst().dropLast())) : .literal(Array(part.utf8))
        }
        routes.append(Route(method: method, pattern: pattern, segments: segments, handler: handler))
        segmentCounts.append(segments.count)
    }

    /// Every (method, pattern) pair, e.g. ("GET", "/devices/{name}"), for checking against the spec.
    public var endpoints: [(method: String, pattern: String)] { routes.map { ($0.method, $0.pattern) } }

    public func match(method: String, path: String) -> Match {
        var text = path
        return text.withUTF8 { raw in
            // Matched on bytes where they lie: a request builds no list of segments, only the values of
            // the route that matches.
            let slashes = raw.reduce(0) { $1 == UInt8(ascii: "/") ? $0 + 1 : $0 }
            return withUnsafeTemporaryAllocation(of: Range<Int>.self, capacity: slashes + 1) { ranges in
                let parts = UnsafeBufferPointer(rebasing: ranges[..<Self.segments(of: raw, into: ranges)])
                guard raw.contains(UInt8(ascii: "%")) else { return firstMatch(method, raw, parts) }
                // Escapes are decoded segment by segment, after splitting: "%2F" in a name is no separator.
                var decoded: [UInt8] = []
                var decodedParts: [Range<Int>] = []
                for range in parts {
                    guard let segment = percentDecode(Substring(String(decoding: UnsafeBufferPointer(rebasing: raw[range]), as: UTF8.self))) else {
                        return .badPath
                    }
                    decodedParts.append(decoded.count..<(decoded.count + segment.utf8.count))
                    decoded += segment.utf8
                }
                return decoded.withUnsafeBufferPointer { bytes in
                    decodedParts.withUnsafeBufferPointer { firstMatch(method, bytes, $0) }
                }
            }
        }
    }

    /// The ranges of `path`'s `/`-separated segments into `ranges` (room for one more than its slashes);
    /// their count. Empty segments are not collapsed ("/devices//stats" is not "/devices/stats"), but a
    /// leading slash and one trailing slash are not segments.
    private static func segments(of path: UnsafeBufferPointer<UInt8>, into ranges: UnsafeMutableBufferPointer<Range<Int>>) -> Int {
        var count = 0
        var start = 0
        for index in 0...path.count where index == path.count || path[index] == UInt8(ascii: "/") {
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

    /// The route for `method` whose pattern matches the segments `parts` of `path`; else which methods
    /// the path has (405), or none (404).
    private func firstMatch(_ method: String, _ path: UnsafeBufferPointer<UInt8>, _ parts: UnsafeBufferPointer<Range<Int>>) -> Match {
        var allowed: [String] = []
        for index in segmentCounts.indices where segmentCounts[index] == parts.count {
            let route = routes[index]
            guard Self.matches(route.segments, path, parts) else { continue }
            if route.method == method {
                var parameters: [(name: String, value: String)] = []
                parameters.reserveCapacity(route.segments.count)
                for (segment, range) in zip(route.segments, parts) {
                    guard case .parameter(let name) = segment else { continue }
                    parameters.append((name, String(decoding: UnsafeBufferPointer(rebasing: path[range]), as: UTF8.self)))
                }
                return .handler(route.handler, PathParameters(values: parameters), pattern: route.pattern, number: index)
            }
            if !allowed.contains(route.method) { allowed.append(route.method) }
        }
        return allowed.isEmpty ? .notFound : .methodNotAllowed(allowed: allowed)
    }

    private static func matches(_ segments: [Segment], _ path: UnsafeBufferPointer<UInt8>, _ parts: UnsafeBufferPointer<Range<Int>>) -> Bool {
        for index in segments.indices {
            let part = UnsafeBufferPointer(rebasing: path[parts[index]])
            switch segments[index] {
            case .literal(let literal):
                guard literal.count == part.count,
                      part.isEmpty || literal.withUnsafeBufferPointer({ memcmp($0.baseAddress!, part.baseAddress!, part.count) == 0 }) else { return false }
            case .parameter: if part.isEmpty { return false }
            }
        }
        return true
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
