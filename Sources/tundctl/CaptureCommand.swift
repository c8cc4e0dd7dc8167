import ArgumentParser
import TundClient
#if canImport(Glibc)
import Glibc
#endif

/// `capture NAME`: GET /devices/{name}/capture, a pcap file streamed as packets arrive, written to a
/// file or to standard output for `tshark -r -` / `tcpdump -r -`.
struct CaptureCommand: TundCommand {
    static let configuration = CommandConfiguration(
        commandName: "capture", abstract: "Capture the packets a device's worker reads, as a pcap file.",
        discussion: """
            Streams the capture as it comes: to --output FILE, or to standard output
            (no --output, or -), which must then not be a terminal:
              tundctl capture tun0 --count 10 --output tun0.pcap
              tundctl capture tun0 --count 3 | tshark -r -
            Ends when tund ends the capture (--count packets or --timeout seconds)
            or on Ctrl-C; what was written until then is a valid pcap file. With
            --output, a summary goes to standard error.
            """)

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The device's name.") var name: String
    @Option(name: [.short, .long], help: "Stop after this many packets (tund's default: 100).") var count: Int?
    @Option(name: [.short, .long], help: ArgumentHelp("Stop after this many whole seconds (tund's default: 10).", valueName: "seconds"))
    var timeout: Int?
    @Option(name: [.short, .long], help: ArgumentHelp("Write the pcap here; - for standard output (the default).", valueName: "file"))
    var output: String?

    /// The stream may stay quiet until the capture ends: wait --timeout plus 10 s; without --timeout,
    /// for ever (tund ends the capture at its own default).
    var requestTimeout: Double { timeout.map { Double($0) + 10 } ?? 0 }

    func validate() throws {
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
        if let timeout, timeout < 1 { throw ValidationError("--timeout must be at least 1 second") }
        if toStandardOutput && StandardStreams.outputIsTerminal {
            throw ValidationError("refusing to write a binary pcap to a terminal: use --output FILE, or pipe it (| tshark -r -)")
        }
    }

    private var toStandardOutput: Bool { output == nil || output == "-" }

    func execute(_ api: APIClient) throws {
        let (head, reader) = try api.openStream(APIPaths.capture(name, count: count, timeout: timeout), streamTimeout: requestTimeout)
        let contentType = head.header("Content-Type")?.lowercased() ?? ""
        guard contentType.hasPrefix("application/vnd.tcpdump.pcap") else {
            throw HTTPClientError.malformed("the capture came as \(contentType.isEmpty ? "no Content-Type" : contentType), not application/vnd.tcpdump.pcap")
        }
        // The file is created only once tund has accepted the capture, so an error leaves nothing behind.
        let destination = try openDestination()
        defer { if destination != 1 { close(destination) } }
        var counter = PcapRecordCounter()
        while let piece = try reader.nextBodyPiece() {
            counter.feed(piece)
            let failure = DescriptorIO.writeAll(destination, piece)
            guard failure == 0 else {
                if destination == 1 { throw OutputClosed() }
                throw LocalError("cannot write \(output ?? "-"): \(String(cString: strerror(failure)))")
            }
        }
        if !counter.looksLikePcap { StandardStreams.err("warning: what tund sent does not start like a pcap file\n") }
        if !toStandardOutput, let output {
            StandardStreams.err("captured \(counter.records) packets (\(counter.bytes) bytes of pcap) to \(output)\n")
        }
    }

    private func openDestination() throws -> Int32 {
        guard !toStandardOutput, let output else { return 1 }
        let descriptor = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw LocalError("cannot create \(output): \(String(cString: strerror(errno)))") }
        return descriptor
    }
}
