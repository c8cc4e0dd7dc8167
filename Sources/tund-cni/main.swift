import TundClient
import TundCNI
import TundJSON
#if canImport(Glibc)
import Glibc
#endif

// tund-cni: a CNI plugin whose interfaces are tund devices. The runtime runs it with CNI_* variables
// and the network configuration on standard input; the answer goes to standard output (SPEC.md).

// A delegated plugin that exits before reading its input must give EPIPE, not kill us.
signal(SIGPIPE, SIG_IGN)

/// The process environment as a dictionary, without Foundation.
func environmentVariables() -> [String: String] {
    var variables: [String: String] = [:]
    var entry = environ
    while let pointer = entry.pointee {
        let text = String(cString: pointer)
        if let equals = text.firstIndex(of: "=") {
            variables[String(text[..<equals])] = String(text[text.index(after: equals)...])
        }
        entry += 1
    }
    return variables
}

let answer: CNIPlugin.Answer
do {
    // A configuration is a few kilobytes; 16 MiB is generous for one with a large prevResult.
    answer = CNIPlugin.run(environment: environmentVariables(), input: try FileContents.read(nil, limit: 16 * 1024 * 1024))
} catch {
    answer = .failure(CNIError(code: CNIError.ioFailure, msg: error.message(label: "standard input")))
}
if answer.output != .null {
    _ = DescriptorIO.writeAll(1, answer.output.serialized() + [0x0a])
}
exit(answer.status)
