#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization
import TundCore

/// swift-log handler writing one logfmt line per event to stderr:
/// `ts=2026-11-25T09:00:00.123Z level=info msg="device created" device=tun0 mtu=1400`.
/// Each line goes out in one write(2), so lines from different threads never interleave.
struct LogfmtHandler: LogHandler {
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    let label: String

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
        LogWriter.shared.write(line)
    }

    /// `quoted(value)` appended to `line`; ASCII text that needs no quotes (most of it) is copied as it is.
    static func appendQuoted(_ value: String, to line: inout [UInt8]) {
        appendQuoted(Substring(value), to: &line)
    }

    static func appendQuoted(_ value: Substring, to line: inout [UInt8]) {
        var value = value
        let copied = value.withUTF8 { bytes -> Bool in
            guard isPlain(bytes) else { return false }
            line.append(contentsOf: bytes)
            return true
        }
        if !copied { line.append(contentsOf: quoted(String(value)).utf8) }
    }

    /// `value` as `appendQuoted` writes it: itself when plain, else `quoted`.
    static func quotedIfNeeded(_ value: Substring) -> Substring {
        var value = value
        return value.withUTF8(isPlain) ? value : Substring(quoted(String(value)))
    }

    /// Bytes that need no quotes: printable ASCII without spaces, quotes or `=` (and not none at all).
    static func isPlain(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        !bytes.isEmpty && !bytes.contains { $0 <= 0x20 || $0 >= 0x80 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "=") }
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

    /// `2026-11-25T09:00:00.123Z` (UTC, milliseconds). The text up to the second is made once a second and
    /// kept: the request log writes one timestamp per request, and `gmtime_r` takes glibc's time-zone lock.
    static func appendTimestamp(to line: inout [UInt8]) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: timestampLength) { text in
            line.append(contentsOf: UnsafeBufferPointer(rebasing: text[..<writeTimestamp(into: text.baseAddress!)]))
        }
    }

    /// The longest timestamp `writeTimestamp` writes (a year of five digits).
    static let timestampLength = 32

    /// The timestamp at `text` (room for `timestampLength` bytes); how many bytes it wrote.
    static func writeTimestamp(into text: UnsafeMutablePointer<UInt8>) -> Int {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        let second = Int(time.tv_sec)
        var count = secondText.withLock { cached in
            if cached.second != second { cached = (second, secondPrefix(second)) }
            return cached.text.withUnsafeBufferPointer { prefix in
                let length = min(prefix.count, timestampLength - 4)
                text.initialize(from: prefix.baseAddress!, count: length)
                return length
            }
        }
        let milliseconds = Int(time.tv_nsec / 1_000_000)
        text[count] = UInt8(ascii: "0") + UInt8(milliseconds / 100)
        text[count + 1] = UInt8(ascii: "0") + UInt8(milliseconds / 10 % 10)
        text[count + 2] = UInt8(ascii: "0") + UInt8(milliseconds % 10)
        text[count + 3] = UInt8(ascii: "Z")
        count += 4
        return count
    }

    private static let secondText = Mutex<(second: Int, text: [UInt8])>((-1, []))

    /// `2026-11-25T09:00:00.` of a time in seconds since 1970 (the milliseconds and `Z` cut off).
    static func secondPrefix(_ epochSeconds: Int) -> [UInt8] {
        Array(Timestamp.format(nanoseconds: UInt64(epochSeconds) * 1_000_000_000).utf8.dropLast(4))
    }
}
