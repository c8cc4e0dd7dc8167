/// One Server-Sent Event: the `id:`, `event:` and `data:` fields before a blank line.
struct ServerSentEvent: Equatable {
    /// The last `id:` seen so far in the stream (an event without one keeps the previous id).
    var id: String?
    /// `event:`, "message" when absent.
    var type: String
    /// The `data:` lines joined with "\n".
    var data: String
}

/// Splits a `text/event-stream` into events as bytes arrive, in pieces of any size.
///
/// Follows the WHATWG parsing rules that matter here: lines end in LF or CRLF; a line starting with `:`
/// is a comment (tund's heartbeat); `field: value` loses one space after the colon; a blank line
/// dispatches the event if it has data; `retry:` sets the reconnection delay; unknown fields are ignored.
struct ServerSentEventParser {
    private var partialLine: [UInt8] = []
    private var type: String?
    private var dataLines: [String] = []
    private var hasData = false
    private(set) var lastEventID: String?
    /// The reconnection delay the server asked for, in milliseconds.
    private(set) var retryMilliseconds: Int?

    /// Feeds bytes; returns the events they complete, in order.
    mutating func feed(_ bytes: [UInt8]) -> [ServerSentEvent] {
        var events: [ServerSentEvent] = []
        for byte in bytes {
            guard byte == 0x0a else { partialLine.append(byte); continue }
            if partialLine.last == 0x0d { partialLine.removeLast() }
            let line = String(decoding: partialLine, as: UTF8.self)
            partialLine.removeAll(keepingCapacity: true)
            if let event = process(line) { events.append(event) }
        }
        return events
    }

    private mutating func process(_ line: String) -> ServerSentEvent? {
        if line.isEmpty {
            defer { type = nil; dataLines = []; hasData = false }
            guard hasData else { return nil }
            return ServerSentEvent(id: lastEventID, type: type ?? "message", data: dataLines.joined(separator: "\n"))
        }
        if line.hasPrefix(":") { return nil }
        let field: Substring
        var value: Substring
        if let colon = line.firstIndex(of: ":") {
            field = line[..<colon]
            value = line[line.index(after: colon)...]
            if value.hasPrefix(" ") { value = value.dropFirst() }
        } else {
            field = Substring(line)
            value = ""
        }
        switch field {
        case "event": type = String(value)
        case "data": dataLines.append(String(value)); hasData = true
        case "id": if !value.contains("\0") { lastEventID = String(value) }
        case "retry": if let milliseconds = Int(value) { retryMilliseconds = milliseconds }
        default: break
        }
        return nil
    }
}
