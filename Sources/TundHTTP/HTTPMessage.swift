/// A complete request as the handler sees it: the body is read in full (and bounded) before handling.
public struct HTTPRequest: Sendable {
    public var method: String
    /// The path as sent, still percent-encoded, without the query string.
    public var path: String
    /// Query arguments, percent-decoded.
    public var query: [String: String]
    /// Header names in lower case.
    public var headers: [String: String]
    public var body: [UInt8]

    public init(method: String, path: String, query: [String: String] = [:], headers: [String: String] = [:], body: [UInt8] = []) {
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
        var text = Substring(self)
        while text.first == " " || text.first == "\t" { text = text.dropFirst() }
        while text.last == " " || text.last == "\t" { text = text.dropLast() }
        return text
    }
}

/// Decodes `%XX` escapes (and nothing else: `+` stays `+` in paths). Returns nil for a malformed
/// escape or a result that is not UTF-8.
public func percentDecode(_ text: Substring) -> String? {
    guard text.contains("%") else { return String(text) }
    var bytes: [UInt8] = []
    var iterator = Array(text.utf8).makeIterator()
    while let byte = iterator.next() {
        guard byte == UInt8(ascii: "%") else { bytes.append(byte); continue }
        guard let high = iterator.next(), let low = iterator.next(),
              let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) else { return nil }
        bytes.append(value)
    }
    return String(validating: bytes, as: UTF8.self)
}
