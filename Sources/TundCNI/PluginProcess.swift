import TundClient
#if canImport(Glibc)
import Glibc
#endif

/// Runs a delegated plugin the way a runtime runs tund-cni: the configuration on standard input, the
/// parameters in the environment, the result read from standard output. Its standard error is ours, so
/// what it says reaches the runtime's log.
public enum PluginProcess {
    /// A result is a few hundred bytes; a plugin printing megabytes is broken.
    static let outputLimit = 16 * 1024 * 1024

    public struct Outcome {
        /// The exit status; a plugin killed by a signal counts as 128 + the signal.
        public let status: Int32
        public let output: [UInt8]
    }

    /// The first executable file named `type` in `directories` (CNI_PATH), as the reference
    /// `invoke.FindInPath` does; a type with a slash is refused, so a configuration cannot run any program.
    public static func find(_ type: String, in directories: [String]) -> String? {
        guard !type.contains("/"), !type.isEmpty else { return nil }
        return directories.lazy.map { "\($0)/\(type)" }.first { access($0, X_OK) == 0 }
    }

    /// Runs `path` to completion. Errors are only for what kept it from running (errno).
    public static func run(_ path: String, environment: [String], input: [UInt8]) throws(CNIError) -> Outcome {
        var toChild: [Int32] = [-1, -1]
        var fromChild: [Int32] = [-1, -1]
        guard pipe(&toChild) == 0 else { throw failure(path, errno) }
        defer { closeAll(toChild) }
        guard pipe(&fromChild) == 0 else { throw failure(path, errno) }
        defer { closeAll(fromChild) }
        // Close-on-exec (pipe2 is not visible to Swift; tund-cni has no other thread that could fork).
        for descriptor in toChild + fromChild { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // dup2 clears close-on-exec on the copies, so only standard input and output reach the child.
        posix_spawn_file_actions_adddup2(&actions, toChild[0], 0)
        posix_spawn_file_actions_adddup2(&actions, fromChild[1], 1)

        let argv = [strdup(path)] + [nil]
        let envp = environment.map { strdup($0) } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, path, &actions, nil, argv, envp)
        guard spawned == 0 else { throw failure(path, spawned) }

        close(toChild[0]); toChild[0] = -1
        close(fromChild[1]); fromChild[1] = -1
        // The configuration is small and plugins read it all before they answer, so writing it whole
        // before reading cannot deadlock. A plugin that exits without reading gives EPIPE (SIGPIPE is
        // ignored by main), which its exit status then explains.
        _ = DescriptorIO.writeAll(toChild[1], input)
        close(toChild[1]); toChild[1] = -1
        let output: [UInt8]
        do {
            output = try DescriptorIO.readAll(fromChild[0], limit: outputLimit)
        } catch {
            kill(pid, SIGKILL)
            _ = waitpid(pid, nil, 0)
            throw CNIError(code: CNIError.ioFailure, msg: "cannot read what \(path) printed: \(error.message(label: "its output"))")
        }

        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw failure(path, errno) }
        }
        let exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Outcome(status: exitStatus, output: output)
    }

    private static func failure(_ path: String, _ code: Int32) -> CNIError {
        CNIError(code: CNIError.ioFailure, msg: "cannot run \(path): \(String(cString: strerror(code)))")
    }

    private static func closeAll(_ descriptors: [Int32]) {
        for descriptor in descriptors where descriptor >= 0 { close(descriptor) }
    }
}
