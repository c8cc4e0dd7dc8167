#if canImport(Glibc)
import Glibc
#endif

/// RFC 3339 UTC timestamps with milliseconds, `2026-11-25T09:12:03.123Z`, without Foundation.
public enum Timestamp {
    static func now() -> String { format(nanoseconds: realtimeNanoseconds()) }

    static func realtimeNanoseconds() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }

    public static func format(nanoseconds: UInt64) -> String {
        var seconds = time_t(nanoseconds / 1_000_000_000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        let millis = Int32(nanoseconds / 1_000_000 % 1000)
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(millis, 3))Z"
    }
}

extension WorkerCounters {
    /// `lastPacketAt` of the sum as RFC 3339, nil before the first packet.
    public var lastPacketAt: String? {
        total.lastPacketAtNanoseconds == 0 ? nil : Timestamp.format(nanoseconds: total.lastPacketAtNanoseconds)
    }
}
