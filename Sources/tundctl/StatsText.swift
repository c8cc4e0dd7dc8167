import TundClient
import TundJSON

/// Counters as people read them: the block of `stats NAME` and the lines of `stats NAME --watch`.
/// Counters are named from the worker's side: read is kernel to worker, written is worker to kernel.
enum StatsText {
    /// The `stats NAME` block.
    static func detail(_ stats: JSONValue) -> String {
        let worker = stats["worker"]
        var block = KeyValueBlock()
        block.add("name", DeviceText.text(stats["name"]))
        block.add("worker", "\(DeviceText.text(worker?["mode"])), \(worker?["running"]?.boolValue == true ? "running" : "stopped")")
        block.add("last packet", DeviceText.text(worker?["last_packet_at"]))
        if let worker {
            block.add("read", traffic(worker, "read"))
            block.add("written", traffic(worker, "written"))
            block.add("errors", "read \(count(worker["read_errors"])), write \(count(worker["write_errors"])), dropped \(count(worker["dropped"]))")
            block.add("protocols", protocols(worker["protocols"]))
        }
        let queues = worker?["queues"]?.arrayValue ?? []
        if queues.count > 1 {
            block.add("queues", lines: queues.map { queue in
                "\(count(queue["queue"])): read \(traffic(queue, "read")); written \(traffic(queue, "written"))"
            })
        }
        if let kernel = stats["kernel"], kernel != .null {
            block.add("kernel", lines: [
                "rx \(count(kernel["rx_packets"])) packets, \(count(kernel["rx_bytes"])) bytes (errors \(count(kernel["rx_errors"])), dropped \(count(kernel["rx_dropped"])))",
                "tx \(count(kernel["tx_packets"])) packets, \(count(kernel["tx_bytes"])) bytes (errors \(count(kernel["tx_errors"])), dropped \(count(kernel["tx_dropped"])))",
                "multicast \(count(kernel["multicast"])), collisions \(count(kernel["collisions"]))",
            ])
        } else {
            block.add("kernel", "- (the link is not present)")
        }
        block.add("drift", "detected \(count(stats["drift"]?["detected"])), repaired \(count(stats["drift"]?["repaired"]))")
        return block.rendered()
    }

    /// Column header of `--watch`; the lines below are right-aligned to it.
    static let watchColumns: [(title: String, width: Int)] = [
        ("TIME", 8), ("READ PKT/S", 11), ("READ/S", 11), ("WRITTEN PKT/S", 14), ("WRITTEN/S", 11),
        ("PACKETS READ", 13), ("BYTES READ", 13), ("PACKETS WRITTEN", 16), ("BYTES WRITTEN", 14),
    ]

    static var watchHeader: String { line(watchColumns.map(\.title)) }

    /// One `--watch` line: time, the four rates, the four totals.
    static func watchLine(time: String, rates: TrafficRates, sample: TrafficSample) -> String {
        func packets(_ rate: Double?) -> String { rate.map { formatFixed($0, decimals: 1) } ?? "-" }
        func bytes(_ rate: Double?) -> String { rate.map(formatBytes) ?? "-" }
        return line([
            time, packets(rates.packetsRead), bytes(rates.bytesRead), packets(rates.packetsWritten), bytes(rates.bytesWritten),
            String(sample.packetsRead), String(sample.bytesRead), String(sample.packetsWritten), String(sample.bytesWritten),
        ])
    }

    private static func line(_ cells: [String]) -> String {
        zip(cells, watchColumns).enumerated().map { index, pair in
            let (cell, column) = pair
            let padding = String(repeating: " ", count: max(0, column.width - cell.count))
            return index == 0 ? cell + padding : padding + cell
        }.joined(separator: "  ") + "\n"
    }

    private static func traffic(_ counters: JSONValue, _ direction: String) -> String {
        "\(count(counters["packets_\(direction)"])) packets, \(count(counters["bytes_\(direction)"])) bytes"
    }

    private static func protocols(_ protocols: JSONValue?) -> String {
        ["ipv4", "ipv6", "arp", "icmp", "icmpv6", "tcp", "udp", "other"].map { "\($0) \(count(protocols?[$0]))" }.joined(separator: ", ")
    }

    private static func count(_ value: JSONValue?) -> String { DeviceText.text(value) }
}
