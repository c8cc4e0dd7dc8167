#if canImport(Glibc)
import Glibc
#endif
import Logging

/// swift-log handler writing one logfmt line per event to stderr:
/// `ts=2026-11-25T09:00:00.123Z level=info msg="device created" device=tun0 mtu=1400`.
/// Each line goes out in one write(2), so lines from different threads never interleave.
struct LogfmtHandler: LogHandler {
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    let label: String

    /// The request log's logger (TundAPI's), whose lines are written in batches.
    static let requestLogLabel = "tund.requests"

    init(label: String, level: Logger.Level) {
        self.label = label
        logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var line: [UInt8] = []
        line.reserveCapacity(256)
        line.append(contentsOf: "ts=".utf8)
        Self.appendTimestamp(to: &line)
        line.append(contentsOf: " level=".utf8)
        line.append(contentsOf: event.level.rawValue.utf8)
        line.append(contentsOf: " msg=".utf8)
        Self.appendQuoted(event.message.description, to: &line)
        // The request log has no handler metadata and no error: its own metadata is used as it is.
        var merged = event.metadata ?? [:]
        if !metadata.isEmpty { merged = metadata.merging(merged) { $1 } }
        if let error = event.error { merged["error"] = "\(error)" }
        for key in merged.keys.sorted() {
            line.append(UInt8(ascii: " "))
            line.append(contentsOf: key.utf8)
            line.append(UInt8(ascii: "="))
            if case .string(let text) = merged[key]! {
                Self.appendQuoted(text, to: &line)
            } else {
                Self.appendQuoted("\(merged[key]!)", to: &line)
            }
        }
        line.append(UInt8(ascii: "\n"))
        if label == Self.requestLogLabel {
            LogWriter.shared.gather(line)
        } else {
            LogWriter.shared.write(line)
        }
    }

    /// `quoted(value)` appended to `line`; ASCII text that needs no quotes (most of it) is copied as it is.
    static func appendQuoted(_ value: String, to line: inout [UInt8]) {
        var value = value
        let copied = value.withUTF8 { bytes -> Bool in
            guard !bytes.isEmpty, !bytes.contains(where: {
                $0 <= 0x20 || $0 >= 0x80 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "=")
            }) else { return false }
            line.append(contentsOf: bytes)
            return true
        }
        if !copied { line.append(contentsOf: quoted(value).utf8) }
    }

    /// Quotes values with spaces, quotes or `=`, and escapes control characters, so one event stays one line.
    static func quoted(_ value: String) -> String {
        let needsQuotes = value.isEmpty || value.contains { $0 == " " || $0 == "\"" || $0 == "=" || $0.asciiValue.map { $0 < 0x20 } ?? false }
        guard needsQuotes else { return value }
        var escaped = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            case "\t": escaped += "\\t"
            default: escaped += scalar.value < 0x20 ? "\\u{\(String(scalar.value, radix: 16))}" : String(scalar)
            }
        }
        return escaped + "\""
    }

    static func timestamp() -> String {
        var bytes: [UInt8] = []
        appendTimestamp(to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `2026-11-25T09:00:00.123Z` (UTC, milliseconds), written digit by digit.
    static func appendTimestamp(to line: inout [UInt8]) {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        var seconds = time.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func digits(_ value: Int32, _ count: Int, then separator: UInt8) {
            var divisor: Int32 = 1
            for _ in 1..<count { divisor *= 10 }
            var rest = value
            while divisor > 0 {
                line.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: (rest / divisor) % 10))
                rest %= divisor
                divisor /= 10
            }
            line.append(separator)
        }
        digits(parts.tm_year + 1900, 4, then: UInt8(ascii: "-"))
        digits(parts.tm_mon + 1, 2, then: UInt8(ascii: "-"))
        digits(parts.tm_mday, 2, then: UInt8(ascii: "T"))
        digits(parts.tm_hour, 2, then: UInt8(ascii: ":"))
        digits(parts.tm_min, 2, then: UInt8(ascii: ":"))
        digits(parts.tm_sec, 2, then: UInt8(ascii: "."))
        digits(Int32(time.tv_nsec / 1_000_000), 3, then: UInt8(ascii: "Z"))
    }
}
