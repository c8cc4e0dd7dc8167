import TundClient
import TundJSON

/// A problem with the command line found after parsing, such as a malformed --server (exit status 64).
struct UsageError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// A local problem: a token file or output file (exit status 3).
struct LocalError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// Turns what a command threw into its message on standard error and its exit status.
///
/// - `ServerError`: `error: <message> (<code>[, field <field>][, errno <errno>])`, then its notes (what a
///   failed apply had done, advice) as `note: ...` lines, status 1; with `--json` the error body also goes
///   to standard output, so scripts can read `.error.code`.
/// - `HTTPClientError`: `error: cannot reach tund at <url>: <reason>` and the like, status 2.
/// - `LocalError`: status 3. `OutputClosed`: nothing, status 0 (the reader left on purpose).
/// - `UsageError`: status 64, like swift-argument-parser's own validation errors; anything else is
///   rethrown to swift-argument-parser.
enum CommandFailure {
    static func exitStatus(for error: any Error, options: GlobalOptions, timeout: Double) throws -> ExitStatus {
        switch error {
        case let failure as ServerError:
            StandardStreams.err("error: \(failure.summary)\n")
            for note in failure.notes { StandardStreams.err("note: \(note)\n") }
            if options.json, !failure.body.isEmpty {
                var body = failure.body
                if body.last != 0x0a { body.append(0x0a) }
                try? StandardStreams.out(body)
            }
            return .serverError
        case let failure as HTTPClientError:
            StandardStreams.err("error: \(failure.message(server: options.serverText, timeout: timeout, program: "tundctl"))\n")
            return .unreachable
        case let failure as LocalError:
            StandardStreams.err("error: \(failure.message)\n")
            return .localError
        case is OutputClosed:
            return .success
        case let failure as UsageError:
            StandardStreams.err("error: \(failure.message)\n")
            return .usage
        default:
            throw error
        }
    }
}

extension ServerError {
    /// Lines printed after the error as `note: ...`: what a failed `PUT /devices` had applied before it
    /// failed (the error's `applied` object), then the command's hint.
    var notes: [String] {
        let applied = PlanText.appliedBeforeFailure((try? JSONValue.parse(body))?["error"])
        return [applied, hint].compactMap { $0 }
    }
}
