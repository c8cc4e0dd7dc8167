import ArgumentParser
import TundClient
import TundJSON

/// `events`: follows GET /events, one line per event, reconnecting with `Last-Event-ID` when the
/// stream breaks (tund restarted, network trouble), like an EventSource does.
struct EventsCommand: TundCommand {
    static let configuration = CommandConfiguration(
        commandName: "events", abstract: "Follow the event stream: devices created, changed, deleted, drift, workers, links.",
        discussion: """
            Prints one line per event, "-" standing for no device:
              <id> <type> <device> <key=value ...>
            or with --json each event's data, one JSON object per line:
              {"sequence", "type", "device", "at", "detail": {...}}
            Runs until Ctrl-C, or until --count events were printed. When the
            stream breaks, tundctl says so on standard error and reconnects, asking
            for the events it missed (with --no-reconnect it ends instead: status 0
            if tund ended the stream, 2 if it broke). A stream silent for 60 s counts
            as broken (tund sends a heartbeat every 15 s). A `resync` event means
            missed events are lost: re-read the state with `devices list`.
            """)

    @OptionGroup var global: GlobalOptions
    @Option(name: .customLong("last-event-id"), help: ArgumentHelp("Start after this event id: replay the events since, if tund still has them.", valueName: "id"))
    var lastEventID: UInt64?
    @Option(name: [.short, .long], help: "Stop after this many events.") var count: Int?
    @Flag(name: .customLong("no-reconnect"), help: "End when the stream breaks instead of reconnecting.") var noReconnect = false

    static let idleTimeout: Double = 60

    func validate() throws {
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
    }

    func execute(_ api: APIClient) throws {
        var resumeAfter = lastEventID.map(String.init)
        var printed = 0
        var retryMilliseconds = 1000
        var connected = false
        while true {
            do {
                var headers: [(name: String, value: String)] = [("Accept", "text/event-stream")]
                if let resumeAfter { headers.append(("Last-Event-ID", resumeAfter)) }
                let (head, reader) = try api.openStream(APIPaths.events, headers: headers, streamTimeout: Self.idleTimeout)
                guard head.header("Content-Type")?.lowercased().hasPrefix("text/event-stream") == true else {
                    throw HTTPClientError.malformed("/events answered with \(head.header("Content-Type") ?? "no Content-Type"), not text/event-stream")
                }
                if connected { StandardStreams.err("note: reconnected to the event stream\n") }
                connected = true
                var parser = ServerSentEventParser()
                while let piece = try reader.nextBodyPiece() {
                    for event in parser.feed(piece) {
                        try show(event)
                        resumeAfter = event.id ?? resumeAfter
                        printed += 1
                        if let count, printed >= count { return }
                    }
                    retryMilliseconds = parser.retryMilliseconds ?? retryMilliseconds
                }
                if noReconnect { return }
                StandardStreams.err("note: tund ended the event stream; reconnecting\n")
            } catch let failure as HTTPClientError {
                // Only a stream that once worked is retried; a first connection that fails is reported.
                guard connected, !noReconnect else { throw failure }
                StandardStreams.err("note: event stream lost (\(failure.message(server: global.serverText, timeout: Self.idleTimeout, program: "tundctl"))); reconnecting\n")
            }
            MonotonicClock.sleep(until: MonotonicClock.now() + Double(max(retryMilliseconds, 100)) / 1000)
        }
    }

    private func show(_ event: ServerSentEvent) throws {
        if global.json { return try StandardStreams.out(event.data + "\n") }
        let data = try? JSONValue.parse(Array(event.data.utf8))
        let id = event.id ?? DeviceText.text(data?["sequence"])
        let type = data?["type"]?.stringValue ?? event.type
        var line = "\(id) \(type) \(DeviceText.text(data?["device"]))"
        for (key, value) in data?["detail"]?.objectValue ?? [] {
            line += " \(key)=\(Self.quoted(DeviceText.text(value)))"
        }
        try StandardStreams.out(line + "\n")
    }

    /// A detail value as one shell-like word: quoted when it holds spaces, quotes or nothing.
    static func quoted(_ value: String) -> String {
        let needsQuotes = value.isEmpty || value.contains { $0 == " " || $0 == "\"" || $0 == "\t" || $0 == "=" }
        guard needsQuotes else { return value }
        return "\"" + value.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"") + "\""
    }
}
