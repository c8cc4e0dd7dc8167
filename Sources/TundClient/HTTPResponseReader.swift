/// The head of an HTTP response: status and headers (names kept as sent, looked up case-insensitively).
public struct HTTPResponseHead {
    public let status: Int
    public let reason: String
    public let headers: [(name: String, value: String)]

    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name.lowercased() == wanted }?.value
    }

    public var isSuccess: Bool { (200..<300).contains(status) }
}

/// Reads one HTTP/1.1 response off a connection: the head, then the body piece by piece as it arrives.
///
/// Body framing follows RFC 9112 section 6.3: none for HEAD, 1xx, 204 and 304; chunked when
/// `Transfer-Encoding` ends in `chunked` (decoded incrementally: a piece is returned as soon as part of
/// a chunk has arrived, and chunk extensions and trailers are skipped); else `Content-Length` bytes; else
/// everything until the server closes. The reader owns the connection and closes it when released.
public final class HTTPResponseReader {
    private enum Framing {
        case empty
        case length(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkEnd
        case untilClose
        case finished
    }

    public static let maximumHeadBytes = 64 * 1024

    private let connection: SocketConnection
    private var buffer: [UInt8] = []
    private var position = 0
    private var framing = Framing.finished

    init(connection: SocketConnection) {
        self.connection = connection
    }

    /// Changes the read timeout for the rest of the body (a stream may wait longer than a reply).
    public func setReadTimeout(_ seconds: Double) throws(HTTPClientError) { try connection.setReadTimeout(seconds) }

    /// Reads the status line and headers, skipping interim 1xx answers, and prepares the body.
    public func readHead(requestMethod: String) throws(HTTPClientError) -> HTTPResponseHead {
        var headBytes = 0
        while true {
            let statusLine = try readLine(budget: &headBytes)
            let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), parts[1].count == 3, let status = Int(parts[1]) else {
                throw .malformed("the status line is \(quote(statusLine))")
            }
            var headers: [(name: String, value: String)] = []
            while true {
                let line = try readLine(budget: &headBytes)
                if line.isEmpty { break }
                guard let colon = line.firstIndex(of: ":") else { throw .malformed("the header line \(quote(line)) has no colon") }
                headers.append((String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingWhitespace()))
            }
            let head = HTTPResponseHead(status: status, reason: parts.count > 2 ? String(parts[2]) : "", headers: headers)
            if (100..<200).contains(status) { continue }
            try prepareBody(head, requestMethod: requestMethod)
            return head
        }
    }

    /// The next piece of the body, or nil at its end.
    public func nextBodyPiece() throws(HTTPClientError) -> [UInt8]? {
        while true {
            switch framing {
            case .empty, .finished:
                framing = .finished
                return nil
            case .length(let remaining):
                if remaining == 0 { framing = .finished; return nil }
                let piece = try take(upTo: remaining)
                guard !piece.isEmpty else { throw .closedEarly }
                framing = .length(remaining: remaining - piece.count)
                return piece
            case .chunkSize:
                var budget = 0
                let line = try readLine(budget: &budget)
                let sizeText = line.split(separator: ";", maxSplits: 1).first.map { String($0).trimmingWhitespace() } ?? ""
                guard let size = Int(sizeText, radix: 16), size >= 0 else { throw .malformed("bad chunk size \(quote(line))") }
                if size == 0 {
                    while try !readLine(budget: &budget).isEmpty {}  // trailers
                    framing = .finished
                    return nil
                }
                framing = .chunkData(remaining: size)
            case .chunkData(let remaining):
                let piece = try take(upTo: remaining)
                guard !piece.isEmpty else { throw .closedEarly }
                framing = remaining == piece.count ? .chunkEnd : .chunkData(remaining: remaining - piece.count)
                return piece
            case .chunkEnd:
                var budget = 0
                guard try readLine(budget: &budget).isEmpty else { throw .malformed("a chunk is not followed by CRLF") }
                framing = .chunkSize
            case .untilClose:
                let piece = try take(upTo: Int.max)
                if piece.isEmpty { framing = .finished; return nil }
                return piece
            }
        }
    }

    /// The whole rest of the body.
    public func readBody() throws(HTTPClientError) -> [UInt8] {
        var body: [UInt8] = []
        while let piece = try nextBodyPiece() { body += piece }
        return body
    }

    private func prepareBody(_ head: HTTPResponseHead, requestMethod: String) throws(HTTPClientError) {
        if requestMethod == "HEAD" || head.status == 204 || head.status == 304 {
            framing = .empty
        } else if let encoding = head.header("Transfer-Encoding") {
            guard encoding.lowercased().split(separator: ",").last.map({ String($0).trimmingWhitespace() }) == "chunked" else {
                throw .malformed("unsupported Transfer-Encoding \(quote(encoding))")
            }
            framing = .chunkSize
        } else if let lengthText = head.header("Content-Length") {
            guard let length = Int(lengthText), length >= 0 else { throw .malformed("bad Content-Length \(quote(lengthText))") }
            framing = .length(remaining: length)
        } else {
            framing = .untilClose
        }
    }

    /// Buffered bytes first, else whatever one receive brings (empty at end of stream).
    private func take(upTo limit: Int) throws(HTTPClientError) -> [UInt8] {
        if position == buffer.count {
            buffer = try connection.receive()
            position = 0
            if buffer.isEmpty { return [] }
        }
        let end = position + min(limit, buffer.count - position)
        defer { position = end }
        return Array(buffer[position..<end])
    }

    /// One line without its CRLF (a bare LF is accepted), counting bytes against the head limit.
    private func readLine(budget: inout Int) throws(HTTPClientError) -> String {
        var line: [UInt8] = []
        while true {
            if position == buffer.count {
                buffer = try connection.receive()
                position = 0
                guard !buffer.isEmpty else { throw .closedEarly }
            }
            let byte = buffer[position]
            position += 1
            budget += 1
            guard budget <= Self.maximumHeadBytes else { throw .malformed("a header or chunk line is longer than 64 KiB") }
            if byte == 0x0a {
                if line.last == 0x0d { line.removeLast() }
                return String(decoding: line, as: UTF8.self)
            }
            line.append(byte)
        }
    }

    private func quote(_ text: String) -> String { "\"" + String(text.prefix(80)) + "\"" }
}

extension String {
    /// Without leading and trailing spaces, tabs, CR and LF.
    public func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }
        return String(drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }
}
