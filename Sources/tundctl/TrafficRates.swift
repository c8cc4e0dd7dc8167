import TundClient
import TundJSON

/// The worker's four traffic counters at one instant (seconds on `MonotonicClock`).
struct TrafficSample {
    let at: Double
    let packetsRead: Int64
    let bytesRead: Int64
    let packetsWritten: Int64
    let bytesWritten: Int64

    /// From a `GET /devices/{name}/stats` answer: `worker.packets_read` and the rest; nil if absent.
    init?(stats: JSONValue, at: Double) {
        let worker = stats["worker"]
        guard let packetsRead = worker?["packets_read"]?.integerValue, let bytesRead = worker?["bytes_read"]?.integerValue,
              let packetsWritten = worker?["packets_written"]?.integerValue, let bytesWritten = worker?["bytes_written"]?.integerValue
        else { return nil }
        self.at = at
        self.packetsRead = packetsRead
        self.bytesRead = bytesRead
        self.packetsWritten = packetsWritten
        self.bytesWritten = bytesWritten
    }
}

/// Per-second rates between two samples. A counter that went down (the daemon restarted, the device
/// was re-created) has no rate for that interval: nil, shown as "-" and as JSON null.
struct TrafficRates {
    let seconds: Double
    let packetsRead: Double?
    let bytesRead: Double?
    let packetsWritten: Double?
    let bytesWritten: Double?

    init(from earlier: TrafficSample, to later: TrafficSample) {
        let seconds = max(later.at - earlier.at, 1e-6)
        func rate(_ old: Int64, _ new: Int64) -> Double? { new >= old ? Double(new - old) / seconds : nil }
        self.seconds = seconds
        packetsRead = rate(earlier.packetsRead, later.packetsRead)
        bytesRead = rate(earlier.bytesRead, later.bytesRead)
        packetsWritten = rate(earlier.packetsWritten, later.packetsWritten)
        bytesWritten = rate(earlier.bytesWritten, later.bytesWritten)
    }

    /// `{"packets_read_per_s", "bytes_read_per_s", "packets_written_per_s", "bytes_written_per_s"}`
    var json: JSONValue {
        func value(_ rate: Double?) -> JSONValue { rate.map { .number(roundedRate($0)) } ?? .null }
        return .object([
            ("packets_read_per_s", value(packetsRead)), ("bytes_read_per_s", value(bytesRead)),
            ("packets_written_per_s", value(packetsWritten)), ("bytes_written_per_s", value(bytesWritten)),
        ])
    }
}
