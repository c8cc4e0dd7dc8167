import TundClient
#if canImport(Glibc)
import Glibc
#endif

/// Writing to standard output and standard error through their file descriptors, unbuffered.
///
/// The C `stdout`/`stderr` streams are global mutable state that Swift 6 refuses to share, so tundctl
/// writes with `write(2)` instead. Each call writes everything it is given, retrying short writes.
/// When the reader of standard output has gone away (`tundctl events | head -1`), writes throw
/// `OutputClosed`, and the command ends quietly with status 0 (SIGPIPE is ignored, see `TundCommand`).
enum StandardStreams {
    /// Standard output: the command's result, which scripts read.
    static func out(_ text: String) throws(OutputClosed) {
        try out(Array(text.utf8))
    }

    static func out(_ bytes: [UInt8]) throws(OutputClosed) {
        guard DescriptorIO.writeAll(1, bytes) == 0 else { throw OutputClosed() }
    }

    /// Standard error: messages for people (errors, notes). Failures to write here are ignored.
    static func err(_ text: String) {
        _ = DescriptorIO.writeAll(2, Array(text.utf8))
    }

    /// True when standard output is a terminal (binary data must not go there).
    static var outputIsTerminal: Bool { isatty(1) == 1 }
}

/// Standard output was closed by its reader (EPIPE) or cannot be written.
struct OutputClosed: Error {}
