import PrivateNamespaceGuard
import Testing

/// Whether kernel tests may run (see `PrivateNamespace`).
enum KernelTestEnvironment {
    static let problem = PrivateNamespace.problem(for: "kernel tests")

    static var available: Bool { problem == nil }
}

@Test func kernelTestsRunInCI() {
    // Skipping is for a developer's unprivileged shell; in CI it is a failure.
    if PrivateNamespace.mustRun() {
        #expect(KernelTestEnvironment.problem == nil, "\(KernelTestEnvironment.problem ?? "")")
    } else if let problem = KernelTestEnvironment.problem {
        print("SKIPPING kernel tests: \(problem)")
    }
}
