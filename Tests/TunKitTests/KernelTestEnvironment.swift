#if canImport(Glibc)
import Glibc
#endif
import Testing

/// Whether kernel tests may run: as root, inside a network namespace that is not the machine's own.
/// scripts/test.sh runs the test binary under `unshare --net` and records the machine's namespace in
/// TUND_HOST_NETNS (/proc/1 may be unreadable in a sandbox).
enum KernelTestEnvironment {
    static let problem: String? = {
        guard geteuid() == 0 else { return "kernel tests need root (CAP_NET_ADMIN, /dev/net/tun)" }
        var own = stat(), host = stat()
        guard stat("/proc/self/ns/net", &own) == 0 else { return "cannot read /proc/self/ns/net" }
        if stat("/proc/1/ns/net", &host) == 0 {
            return own.st_ino != host.st_ino ? nil : "kernel tests must run in a private network namespace (scripts/test.sh)"
        }
        guard let recorded = getenv("TUND_HOST_NETNS").flatMap({ UInt($0.withMemoryRebound(to: CChar.self, capacity: 1) { String(cString: $0) }) }) else {
            return "cannot tell this namespace from the machine's: run through scripts/test.sh"
        }
        return own.st_ino != recorded ? nil : "kernel tests must run in a private network namespace (scripts/test.sh)"
    }()

    static var available: Bool { problem == nil }
}

@Test func kernelTestsRunInCI() {
    // Skipping is for a developer's unprivileged shell; in CI it is a failure.
    if let ci = getenv("CI"), String(cString: ci) == "true" {
        #expect(KernelTestEnvironment.problem == nil, "\(KernelTestEnvironment.problem ?? "")")
    } else if let problem = KernelTestEnvironment.problem {
        print("SKIPPING kernel tests: \(problem)")
    }
}
