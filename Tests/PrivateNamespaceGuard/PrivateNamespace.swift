#if canImport(Glibc)
import Glibc
#endif

/// Whether privileged tests may run: as root, inside a network namespace that is not the machine's own.
/// scripts/test.sh runs the test binaries under `unshare --net` and records the machine's namespace in
/// TUND_HOST_NETNS (/proc/1 may be unreadable in a sandbox). Shared by every test target that touches
/// the kernel, so they all follow one rule.
public enum PrivateNamespace {
    /// nil when `tests` (named in the reason, e.g. "kernel tests") may run here; else why not.
    public static func problem(for tests: String) -> String? {
        guard geteuid() == 0 else { return "\(tests) need root (CAP_NET_ADMIN, /dev/net/tun)" }
        var own = stat(), host = stat()
        guard stat("/proc/self/ns/net", &own) == 0 else { return "cannot read /proc/self/ns/net" }
        let shared = "\(tests) must run in a private network namespace (scripts/test.sh)"
        if stat("/proc/1/ns/net", &host) == 0 { return own.st_ino != host.st_ino ? nil : shared }
        guard let recorded = variable("TUND_HOST_NETNS").flatMap({ UInt($0) }) else {
            return "cannot tell this namespace from the machine's: run through scripts/test.sh"
        }
        return own.st_ino != recorded ? nil : shared
    }

    /// Skipping is for a developer's unprivileged shell; under CI=true a `problem` is a failure, which
    /// the caller records (`#expect(problem == nil)`) when this returns true.
    public static func mustRun() -> Bool { variable("CI") == "true" }

    static func variable(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
}
