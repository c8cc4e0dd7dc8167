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
        LogWriter.shared.gather { line in
            line.append(contentsOf: Self.start)
            LogfmtHandler.appendTimestamp(to: &line)
            line.append(contentsOf: Self.afterTimestamp)
            Self.appendMilliseconds(microseconds, to: &line)
            line.append(contentsOf: Self.beforeMethod)
            LogfmtHandler.appendQuoted(method, to: &line)
            line.append(contentsOf: Self.beforePath)
            LogfmtHandler.appendQuoted(path, to: &line)
            line.append(contentsOf: Self.beforeStatus)
            JSONValue.writeInteger(Int64(status), to: &line)
            line.append(UInt8(ascii: "\n"))
        }
    }

    private static let start = Array("ts=".utf8), afterTimestamp = Array(" level=info msg=request duration_ms=".utf8)
    private static let beforeMethod = Array(" method=".utf8), beforePath = Array(" path=".utf8), beforeStatus = Array(" status=".utf8)

    /// `microseconds / 1000` as `Double.description` writes it ("0.003", "1.0", "12.345"), without the
    /// floating-point formatting.
    static func appendMilliseconds(_ microseconds: Int64, to line: inout [UInt8]) {
        let value = UInt64(clamping: microseconds)
        JSONValue.writeInteger(Int64(value / 1000), to: &line)
        line.append(UInt8(ascii: "."))
        var fraction = value % 1000
        guard fraction != 0 else { return line.append(UInt8(ascii: "0")) }
        var width = 3
        while fraction % 10 == 0 { fraction /= 10; width -= 1 }
        var divisor: UInt64 = width == 3 ? 100 : width == 2 ? 10 : 1
        while divisor > 0 {
            line.append(UInt8(ascii: "0") + UInt8(fraction / divisor % 10))
            divisor /= 10
        }
    }
}
