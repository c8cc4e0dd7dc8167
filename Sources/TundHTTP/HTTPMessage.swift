/// A complete request as the handler sees it: the body is read in full (and bounded) before handling.
public struct HTTPRequest: Sendable {
    public var method: String
    /// The path as sent, still percent-encoded, without the query string.
    public var path: String
    /// Query arguments, percent-decoded.
    public var query: [String: String]
    /// The header lines as sent; looked up by name without regard to case.
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(method: String, path: String, query: [String: String] = [:], headers: HTTPHeaders = [:], body: [UInt8] = []) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
    }

    /// The media type of Content-Type without parameters, lower-cased: `application/json`.
    public var mediaType: String? {
        headers["content-type"].map { ($0.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? "").trimmingSpaces().lowercased() }
    }
}

/// A request's header lines, names as written and duplicates kept, in order. A request has a handful, so
/// a lookup scans them: cheaper than building a dictionary for every request.
public struct HTTPHeaders: Sendable, ExpressibleByDictionaryLiteral {
    public var lines: [(name: String, value: String)]

    public init(lines: [(name: String, value: String)]) {
        self.lines = lines
    }

    public init(dictionaryLiteral elements: (String, String)...) {
        lines = elements.map { (name: $0.0, value: $0.1) }
    }

    /// The value of the last line named `name` (compared without regard to ASCII case).
    public subscript(name: String) -> String? {
        var wanted = name
        return wanted.withUTF8 { wanted in
            lines.last { line in
                var name = line.name
                return name.withUTF8 { equalIgnoringASCIICase($0, wanted) }
            }?.value
        }
    }
}

/// True when `a` and `b` differ at most in the case of ASCII letters (header names, host names).
func equalIgnoringASCIICase(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
    guard a.count == b.count else { return false }
    for index in 0..<a.count where a[index] != b[index] {
        let lower = a[index] | 0x20
        guard lower == b[index] | 0x20, lower >= UInt8(ascii: "a"), lower <= UInt8(ascii: "z") else { return false }
    }
    return true
}

public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// When set, the body is this stream instead of `body`, sent with chunked encoding as it comes.
    public var stream: HTTPStream?

    public init(status: Int, headers: [(String, String)] = [], body: [UInt8] = [], stream: HTTPStream? = nil) {
        self.status = status
        self.headers = headers
        self.body = body
        self.stream = stream
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces and tabs (header values, query arguments, /proc lines).
    public func trimmingSpaces() -> Substring {
        let text = Substring(self)
        let bytes = text.utf8
        func isSpace(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        // Most values have nothing to trim.
        if let first = bytes.first, let last = bytes.last, !isSpace(first), !isSpace(last) { return text }
        guard let first = bytes.firstIndex(where: { !isSpace($0) }) else { return text[text.endIndex...] }
        let end = bytes.index(after: bytes.lastIndex(where: { !isSpace($0) })!)  // just before a space or the end
        return text[first..<end]
    }
}
