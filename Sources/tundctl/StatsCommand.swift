import ArgumentParser
import TundClient
import TundJSON

/// `stats NAME [--watch]`: GET /devices/{name}/stats once, or every interval with packet and byte rates.
struct StatsCommand: TundCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats", abstract: "Show a device's counters, or watch its packet and byte rates.",
        discussion: """
            Once: the worker's counters (packets and bytes read and written,
            errors, dropped, per protocol, per queue) beside the kernel's. Read is
            kernel to worker, written is worker to kernel.

            --watch: a line every --interval seconds with packets/s and bytes/s
            read and written, computed from successive samples, and the totals;
            until Ctrl-C, or --count lines. The first line comes one interval
            after a first, silent, sample. With --json each line is one object:
              {"name", "sample", "elapsed_s", "interval_s",
               "rates": {"packets_read_per_s", "bytes_read_per_s",
                         "packets_written_per_s", "bytes_written_per_s"},
               "worker": {...}, "kernel": {...}, "drift": {...}}
            A rate is null when its counter went down between two samples (the
            device was re-created, or tund restarted).
            """)

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The device's name.") var name: String
    @Flag(name: [.short, .long], help: "Print rates every interval until interrupted.") var watch = false
    @Option(name: [.short, .long], help: ArgumentHelp("Seconds between samples with --watch.", valueName: "seconds")) var interval: Double = 1
    @Option(name: [.short, .long], help: "Stop after this many lines with --watch.") var count: Int?

    func validate() throws {
        guard interval >= 0.05, interval <= 86_400 else { throw ValidationError("--interval must be from 0.05 to 86400 seconds") }
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
        if count != nil && !watch { throw ValidationError("--count goes with --watch") }
    }

    func execute(_ api: APIClient) throws {
        guard watch else {
            let response = try api.get(APIPaths.stats(name))
            if global.json { return try printJSON(response) }
            return try StandardStreams.out(StatsText.detail(try response.json()))
        }
        var (_, previous) = try sample(api)
        let start = previous.at
        var deadline = start
        if !global.json { try StandardStreams.out(StatsText.watchHeader) }
        var printed = 0
        while count.map({ printed < $0 }) ?? true {
            deadline += interval
            let now = MonotonicClock.now()
            if deadline < now { deadline = now }  // fell behind (slow answers): keep the pace from here
            MonotonicClock.sleep(until: deadline)
            let (stats, current) = try sample(api)
            let rates = TrafficRates(from: previous, to: current)
            printed += 1
            if global.json {
                let line = JSONValue.object([
                    ("name", stats["name"] ?? .string(name)),
                    ("sample", .integer(Int64(printed))),
                    ("elapsed_s", .number(roundedRate(current.at - start))),
                    ("interval_s", .number(roundedRate(rates.seconds))),
                    ("rates", rates.json),
                    ("worker", stats["worker"] ?? .null),
                    ("kernel", stats["kernel"] ?? .null),
                    ("drift", stats["drift"] ?? .null),
                ])
                try StandardStreams.out(line.serialized() + [0x0a])
            } else {
                try StandardStreams.out(StatsText.watchLine(time: MonotonicClock.wallClockTime(), rates: rates, sample: current))
            }
            previous = current
        }
    }

    /// One stats answer, timed at the middle of its round trip.
    private func sample(_ api: APIClient) throws -> (JSONValue, TrafficSample) {
        let sent = MonotonicClock.now()
        let stats = try api.get(APIPaths.stats(name)).json()
        let at = (sent + MonotonicClock.now()) / 2
        guard let sample = TrafficSample(stats: stats, at: at) else {
            throw HTTPClientError.malformed("the stats answer has no worker.packets_read, bytes_read, packets_written or bytes_written")
        }
        return (stats, sample)
    }
}
