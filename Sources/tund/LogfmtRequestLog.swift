import Logging
import TundAPI
import TundJSON

/// The request log as logfmt, written straight into `LogWriter`'s batch: the same line `LogfmtHandler`
/// writes for `msg=request` (keys sorted), without swift-log's metadata dictionary.
struct LogfmtRequestLog: RequestLog {
    /// False above info: the line is not even formatted.
    let enabled: Bool

    init(level: Logger.Level) {
        enabled = level <= .info
    }

    func record(method: Substring, path: Substring, status: Int, microseconds: Int64) {
        guard enabled else { return }
        // The line is put together on the stack with stores and copied into the batch once. A method or path
        // with something to quote (rare) is quoted first, as `LogfmtHandler.appendQuoted` would write it.
        var method = LogfmtHandler.quotedIfNeeded(method), path = LogfmtHandler.quotedIfNeeded(path)
        method.withUTF8 { method in
            path.withUTF8 { path in
                // The fixed text, a timestamp, a duration and a status take under 160 bytes.
                withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 160 + method.count + path.count) { buffer in
                    var cursor = buffer.baseAddress!
                    func put(_ bytes: UnsafeRawBufferPointer) {
                        UnsafeMutableRawPointer(cursor).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
                        cursor += bytes.count
                    }
                    func put(_ bytes: UnsafeBufferPointer<UInt8>) { put(UnsafeRawBufferPointer(bytes)) }
                    Self.start.withUnsafeBytes(put)
                    cursor += LogfmtHandler.writeTimestamp(into: cursor)
                    Self.afterTimestamp.withUnsafeBytes(put)
                    cursor += Self.writeMilliseconds(microseconds, into: cursor)
                    Self.beforeMethod.withUnsafeBytes(put)
                    put(method)
                    Self.beforePath.withUnsafeBytes(put)
                    put(path)
                    Self.beforeStatus.withUnsafeBytes(put)
                    cursor += JSONValue.formatInteger(status, into: cursor)
                    cursor.pointee = UInt8(ascii: "\n")
                    cursor += 1
                    let line = UnsafeBufferPointer(start: buffer.baseAddress!, count: cursor - buffer.baseAddress!)
                    LogWriter.shared.gather { $0.append(contentsOf: line) }
                }
            }
        }
    }

    private static let start = Array("ts=".utf8), afterTimestamp = Array(" level=info msg=request duration_ms=".utf8)
    private static let beforeMethod = Array(" method=".utf8), beforePath = Array(" path=".utf8), beforeStatus = Array(" status=".utf8)

    /// `microseconds / 1000` as `Double.description` writes it ("0.003", "1.0", "12.345"), without the
    /// floating-point formatting, at `text` (room for 24 bytes); how many bytes it wrote.
    static func writeMilliseconds(_ microseconds: Int64, into text: UnsafeMutablePointer<UInt8>) -> Int {
        let value = UInt64(clamping: microseconds)
        var count = JSONValue.formatInteger(Int(value / 1000), into: text)
        text[count] = UInt8(ascii: ".")
        count += 1
        var fraction = value % 1000
        guard fraction != 0 else {
            text[count] = UInt8(ascii: "0")
            return count + 1
        }
        var width = 3
        while fraction % 10 == 0 { fraction /= 10; width -= 1 }
        var divisor: UInt64 = width == 3 ? 100 : width == 2 ? 10 : 1
        while divisor > 0 {
            text[count] = UInt8(ascii: "0") + UInt8(fraction / divisor % 10)
            count += 1
            divisor /= 10
        }
        return count
    }
}
