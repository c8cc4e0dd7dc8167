import ArgumentParser
import TundClient
#if canImport(Glibc)
import Glibc
#endif

/// A tundctl command that talks to tund: it gets an `APIClient` made from the global options, and
/// whatever it throws is reported once, in one format, with the documented exit status.
protocol TundCommand: ParsableCommand {
    var global: GlobalOptions { get }
    /// Seconds to wait for connecting and for each read of an answer; 0 waits for ever. Default 10.
    var requestTimeout: Double { get }
    func execute(_ api: APIClient) throws
}

extension TundCommand {
    var requestTimeout: Double { 10 }

    mutating func run() throws {
        // A closed pipe must be an error from write(2), not a signal that kills us mid-line.
        signal(SIGPIPE, SIG_IGN)
        let status: ExitStatus
        do {
            try execute(try global.makeClient(timeout: requestTimeout))
            status = .success
        } catch {
            status = try CommandFailure.exitStatus(for: error, options: global, timeout: requestTimeout)
        }
        if status != .success { throw ExitCode(status.rawValue) }
    }

    /// Prints a successful JSON answer as one line, as tund sent it.
    func printJSON(_ response: APIResponse) throws {
        try StandardStreams.out(response.jsonLine)
    }
}

/// The `If-Match` header for `--if-match GEN`: the device must still be at generation GEN.
func ifMatchHeader(_ generation: Int64?) -> [(name: String, value: String)] {
    generation.map { [("If-Match", "\"\($0)\"")] } ?? []
}
