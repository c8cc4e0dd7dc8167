import Synchronization
import TundCore
import TundVersion

/// Prometheus text exposition (format 0.0.4), written by hand: a few families, no dependency. Written as
/// bytes, sample by sample, since a host with ten thousand devices has a few hundred thousand samples.
struct MetricsText {
    private(set) var bytes: [UInt8] = []

    init() { bytes.reserveCapacity(1 << 16) }

    var text: String { String(decoding: bytes, as: UTF8.self) }

    /// Starts a family: `# HELP` and `# TYPE` lines.
    mutating func family(_ name: String, _ type: String, _ help: String) {
        bytes += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n".utf8
    }

    mutating func sample(_ name: String, _ labels: [(String, String)] = [], _ value: Double) {
        head(name, labels)
        if value == value.rounded(), abs(value) < 1e15 {
            if value < 0 { bytes.append(UInt8(ascii: "-")) }
            decimal(UInt64(abs(value)))
        } else {
            bytes += Self.format(value).utf8
        }
        bytes.append(0x0a)
    }

    mutating func sample(_ name: String, _ labels: [(String, String)] = [], _ value: UInt64) {
        head(name, labels)
        decimal(value)
        bytes.append(0x0a)
    }

    private mutating func head(_ name: String, _ labels: [(String, String)]) {
        bytes += name.utf8
        if !labels.isEmpty {
            bytes.append(UInt8(ascii: "{"))
            for (position, (key, value)) in labels.enumerated() {
                if position > 0 { bytes.append(UInt8(ascii: ",")) }
                bytes += key.utf8
                bytes.append(UInt8(ascii: "="))
                bytes.append(UInt8(ascii: "\""))
                for byte in value.utf8 {
                    switch byte {
                    case UInt8(ascii: "\\"): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
                    case UInt8(ascii: "\""): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
                    case 0x0a: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
                    default: bytes.append(byte)
                    }
                }
                bytes.append(UInt8(ascii: "\""))
            }
            bytes.append(UInt8(ascii: "}"))
        }
        bytes.append(UInt8(ascii: " "))
    }

    private mutating func decimal(_ value: UInt64) {
        guard value >= 10 else {
            bytes.append(UInt8(ascii: "0") + UInt8(value))
            return
        }
        var rest = value
        let start = bytes.count
        while rest > 0 {
            bytes.append(UInt8(ascii: "0") + UInt8(rest % 10))
            rest /= 10
        }
        bytes[start...].reverse()
    }

    static func format(_ value: Double) -> String {
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }
}

/// Counts and times API requests by method, route pattern (never the raw path: bounded labels) and status.
final class RequestMetrics: Sendable {
    static let buckets: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

    private struct Histogram {
        var counts = [UInt64](repeating: 0, count: RequestMetrics.buckets.count)
        var sum = 0.0
        var count: UInt64 = 0

        mutating func record(_ seconds: Double) {
            for (index, bound) in RequestMetrics.buckets.enumerated() where seconds <= bound { counts[index] += 1 }
            sum += seconds
            count += 1
        }
    }

    /// One method and route: its durations and its answers by status.
    private struct RouteRecord {
        let method: String
        let route: String
        var durations = Histogram()
        /// A route answers with a handful of statuses: a scan beats hashing.
        var statuses: [(status: Int, count: UInt64)] = []

        mutating func record(status: Int, seconds: Double) {
            durations.record(seconds)
            if let index = statuses.firstIndex(where: { $0.status == status }) {
                statuses[index].count += 1
            } else {
                statuses.append((status, 1))
            }
        }
    }

    private struct Table {
        /// By the router's route number: found without hashing the route's text, which was most of the
        /// cost of counting a request.
        var matched: [RouteRecord?] = []
        /// Requests no route took, by method.
        var unmatched: [String: RouteRecord] = [:]
    }

    private let table = Mutex(Table())

    /// The methods a request that matched no route is counted under; any other is counted as "other",
    /// so a client sending made-up methods cannot grow the label set (and tund's memory) without bound.
    private static let knownMethods: Set<String> = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

    /// `route`: the route's number and pattern, or nil when no route matched.
    func record(method: String, route: (number: Int, pattern: String)?, status: Int, seconds: Double) {
        table.withLock { table in
            guard let route else {
                let label = Self.knownMethods.contains(method) ? method : "other"
                table.unmatched[label, default: RouteRecord(method: label, route: "unmatched")].record(status: status, seconds: seconds)
                return
            }
            if route.number >= table.matched.count {
                table.matched += Array(repeating: nil, count: route.number + 1 - table.matched.count)
            }
            if table.matched[route.number] == nil { table.matched[route.number] = RouteRecord(method: method, route: route.pattern) }
            table.matched[route.number]!.record(status: status, seconds: seconds)  // in place: no copy of the buckets
        }
    }

    func write(to text: inout MetricsText) {
        let records = table.withLock { $0.matched.compactMap { $0 } + $0.unmatched.values }.sorted { ($0.method, $0.route) < ($1.method, $1.route) }
        text.family("tund_http_requests_total", "counter", "API requests answered, by method, route and status.")
        for record in records {
            for (status, count) in record.statuses.sorted(by: { String($0.status) < String($1.status) }) {
                text.sample("tund_http_requests_total", [("method", record.method), ("route", record.route), ("status", String(status))], count)
            }
        }
        text.family("tund_http_request_duration_seconds", "histogram", "Time from a complete request to its answer, by method and route.")
        for record in records {
            let labels = [("method", record.method), ("route", record.route)]
            let histogram = record.durations
            for (index, bound) in Self.buckets.enumerated() {
                text.sample("tund_http_request_duration_seconds_bucket", labels + [("le", MetricsText.format(bound))], histogram.counts[index])
            }
            text.sample("tund_http_request_duration_seconds_bucket", labels + [("le", "+Inf")], histogram.count)
            text.sample("tund_http_request_duration_seconds_sum", labels, histogram.sum)
            text.sample("tund_http_request_duration_seconds_count", labels, histogram.count)
        }
    }
}

/// `GET /metrics`: every device's worker and kernel counters, drift and restore counts, API metrics,
/// build info.
enum DeviceMetrics {
    static let version = TundVersion.current

    static func render(fleet: DeviceFleet, requests: RequestMetrics, eventStreams: Int) -> [UInt8] {
        var text = MetricsText()
        text.family("tund_build_info", "gauge", "Always 1; the labels say which build this is.")
        text.sample("tund_build_info", [("version", version)], 1.0)
        text.family("tund_ready", "gauge", "1 once every stored device has been restored.")
        text.sample("tund_ready", [], fleet.isReady ? 1.0 : 0.0)

        let statistics = fleet.listWithStatistics()
        text.family("tund_devices", "gauge", "Devices tund manages.")
        text.sample("tund_devices", [], Double(statistics.count))
        let restore = fleet.lastRestore
        text.family("tund_restore_devices", "gauge", "What the last start's restore did, by outcome.")
        for (outcome, count) in [("reattached", restore.reattached.count), ("recreated", restore.recreated.count),
                                 ("orphan_removed", restore.orphansRemoved.count), ("failed", restore.failed.count)] {
            text.sample("tund_restore_devices", [("outcome", outcome)], Double(count))
        }
        text.family("tund_device_up", "gauge", "1 when the link is administratively up, as the kernel says.")
        for (device, _) in statistics { text.sample("tund_device_up", [("device", device.record.name)], device.link?.up == true ? 1.0 : 0.0) }
        text.family("tund_device_present", "gauge", "1 when the link exists and tund holds it.")
        for (device, _) in statistics { text.sample("tund_device_present", [("device", device.record.name)], device.link == nil ? 0.0 : 1.0) }
        text.family("tund_device_mtu_bytes", "gauge", "The link's MTU as the kernel says.")
        for (device, _) in statistics { if let link = device.link { text.sample("tund_device_mtu_bytes", [("device", device.record.name)], Double(link.mtu)) } }

        // Every per-queue counter, from the counter table: one family after another, in the table's order.
        var families: [String] = []
        for counter in Counter.allCases where !families.contains(counter.metric.family) { families.append(counter.metric.family) }
        for family in families {
            text.family(family, "counter", Counter.metricHelp[family] ?? family)
            let members = Counter.allCases.filter { $0.metric.family == family }
            for (device, stats) in statistics {
                for queue in stats.worker.queues {
                    for counter in members {
                        text.sample(family, [("device", device.record.name), ("queue", String(queue.queue)),
                                             ("mode", stats.worker.mode.rawValue), (counter.metric.label.name, counter.metric.label.value)],
                                    queue[counter])
                    }
                }
            }
        }
        text.family("tund_worker_running", "gauge", "1 while the device's worker threads run.")
        for (device, stats) in statistics { text.sample("tund_worker_running", [("device", device.record.name), ("mode", stats.worker.mode.rawValue)], stats.worker.running ? 1.0 : 0.0) }
        text.family("tund_worker_last_packet_timestamp_seconds", "gauge", "When the worker last read a packet (Unix time); absent before the first.")
        for (device, stats) in statistics where stats.worker.total.lastPacketAtNanoseconds > 0 {
            text.sample("tund_worker_last_packet_timestamp_seconds", [("device", device.record.name)], Double(stats.worker.total.lastPacketAtNanoseconds) / 1e9)
        }

        func kernel(_ name: String, _ help: String, _ values: [(String, (KernelCounters) -> UInt64)]) {
            text.family(name, "counter", help)
            for (device, stats) in statistics {
                guard let counters = stats.kernel else { continue }
                for (direction, value) in values { text.sample(name, [("device", device.record.name), ("direction", direction)], value(counters)) }
            }
        }
        kernel("tund_link_packets_total", "The kernel's link counters (IFLA_STATS64): tx = handed to the worker, rx = written by it.",
               [("rx", \.rxPackets), ("tx", \.txPackets)])
        kernel("tund_link_bytes_total", "The kernel's link byte counters.", [("rx", \.rxBytes), ("tx", \.txBytes)])
        kernel("tund_link_errors_total", "The kernel's link error counters.", [("rx", \.rxErrors), ("tx", \.txErrors)])
        kernel("tund_link_dropped_total", "The kernel's link drop counters (tx: the worker was not reading fast enough).",
               [("rx", \.rxDropped), ("tx", \.txDropped)])

        text.family("tund_drift_detected_total", "counter", "Changes made by others to the device that tund saw.")
        for (device, _) in statistics { text.sample("tund_drift_detected_total", [("device", device.record.name)], Double(device.driftDetected)) }
        text.family("tund_drift_repaired_total", "counter", "Changes made by others that tund put back.")
        for (device, _) in statistics { text.sample("tund_drift_repaired_total", [("device", device.record.name)], Double(device.driftRepaired)) }

        // WireGuard peers, labelled by device and public key (base64, as `wg show` prints it).
        let peers = statistics.flatMap { device, stats in stats.peers.map { (device.record.name, WireGuardJSON.base64($0.publicKey), $0) } }
        func peerFamily(_ name: String, _ type: String, _ help: String, _ samples: (WireGuardPeerStatus) -> [([(String, String)], Double)]) {
            text.family(name, type, help)
            for (device, key, peer) in peers {
                for (labels, value) in samples(peer) { text.sample(name, [("device", device), ("public_key", key)] + labels, value) }
            }
        }
        peerFamily("tund_wireguard_peer_bytes_total", "counter", "Bytes of transport data to and from the peer (after decryption).") {
            [([("direction", "rx")], Double($0.rxBytes)), ([("direction", "tx")], Double($0.txBytes))]
        }
        peerFamily("tund_wireguard_peer_packets_total", "counter", "Transport packets to and from the peer.") {
            [([("direction", "rx")], Double($0.rxPackets)), ([("direction", "tx")], Double($0.txPackets))]
        }
        peerFamily("tund_wireguard_peer_handshakes_total", "counter", "Handshakes with the peer, initiated and completed.") {
            [([("state", "initiated")], Double($0.handshakesInitiated)), ([("state", "completed")], Double($0.handshakesCompleted))]
        }
        peerFamily("tund_wireguard_peer_last_handshake_timestamp_seconds", "gauge", "When the last handshake completed (Unix time); absent before the first.") {
            $0.lastHandshakeUnixNanoseconds.map { [([], Double($0) / 1e9)] } ?? []
        }
        peerFamily("tund_wireguard_peer_dropped_total", "counter", "Packets from or for the peer that were dropped, by reason.") {
            $0.drops.sorted { $0.key < $1.key }.map { ([("reason", $0.key)], Double($0.value)) }
        }

        text.family("tund_wireguard_dropped_total", "counter", "WireGuard messages dropped before any peer took them, by reason (bad_mac, unknown_peer, no_route, under_load_cookie).")
        for (device, stats) in statistics where stats.worker.mode == .wireguard {
            for (reason, count) in stats.wireguardDrops.sorted(by: { $0.key < $1.key }) {
                text.sample("tund_wireguard_dropped_total", [("device", device.record.name), ("reason", reason)], Double(count))
            }
        }

        text.family("tund_event_streams", "gauge", "Clients following GET /events.")
        text.sample("tund_event_streams", [], Double(eventStreams))
        requests.write(to: &text)
        return text.bytes
    }
}
