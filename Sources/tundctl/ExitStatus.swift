/// The exit statuses of tundctl, documented in `tundctl --help`.
enum ExitStatus: Int32 {
    /// The command did what it was asked.
    case success = 0
    /// tund answered with an error (a non-2xx status); its message is printed.
    case serverError = 1
    /// tund could not be reached, did not answer in time, or its answer was not the HTTP tundctl expects.
    case unreachable = 2
    /// A local problem: an unreadable token file, an output file that cannot be written, a device file
    /// that cannot be read or is not JSON.
    case localError = 3
    /// The command line is wrong (swift-argument-parser's validation status).
    case usage = 64

    /// The text for the `--help` discussion.
    static let helpText = """
        EXIT STATUS
          0   success
          1   tund answered with an error, printed on standard error as
              error: <message> (<code>[, field <field>][, errno <errno>])
              (with --json, tund's error body also goes to standard output)
          2   tund could not be reached, did not answer in time, or sent
              something that is not the HTTP/JSON tundctl expects
          3   a local problem: token file unreadable, output file not writable,
              device file (apply, diff) unreadable or not JSON
          64  bad command line
        """
}
