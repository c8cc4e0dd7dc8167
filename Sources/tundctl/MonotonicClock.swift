#if canImport(Glibc)
import Glibc
#endif

/// Time for measuring intervals (CLOCK_MONOTONIC, never jumps) and for sleeping, in seconds.
enum MonotonicClock {
    static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    /// Sleeps until `deadline` (a value of `now()`), resuming after signals that do not end the process.
    static func sleep(until deadline: Double) {
        while true {
            let remaining = deadline - now()
            guard remaining > 0 else { return }
            let whole = remaining.rounded(.down)
            var request = timespec(tv_sec: Int(whole), tv_nsec: Int((remaining - whole) * 1e9))
            _ = nanosleep(&request, nil)
        }
    }

    /// The local wall-clock time as HH:MM:SS, for watch lines.
    static func wallClockTime() -> String {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        func twoDigits(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(twoDigits(parts.tm_hour)):\(twoDigits(parts.tm_min)):\(twoDigits(parts.tm_sec))"
    }
}
