/// The runtime's parameters, passed as CNI_* environment variables (SPEC.md, "Parameters").
public struct CNIEnvironment: Equatable {
    public enum Command: String {
        case add = "ADD", del = "DEL", check = "CHECK", version = "VERSION"
    }

    public let command: Command
    public let containerID: String
    /// The namespace path; DEL may come without one (the namespace is already gone).
    public let netns: String?
    public let ifname: String
    /// The directories where delegated plugins (IPAM) are looked for, in order.
    public let path: [String]
    /// Every variable as given, passed on unchanged to the IPAM plugin.
    public let variables: [String: String]

    /// Reads and checks what `command` needs: VERSION needs nothing else; ADD and CHECK need the
    /// container ID, netns, interface name and CNI_PATH; DEL needs all but the netns.
    public init(_ variables: [String: String]) throws(CNIError) {
        self.variables = variables
        guard let commandText = variables["CNI_COMMAND"], !commandText.isEmpty else {
            throw CNIError(code: CNIError.invalidEnvironment, msg: "CNI_COMMAND is not set")
        }
        guard let command = Command(rawValue: commandText) else {
            throw CNIError(code: CNIError.invalidEnvironment, msg: "unknown CNI_COMMAND \(commandText)",
                           details: "tund-cni supports ADD, DEL, CHECK and VERSION")
        }
        self.command = command
        func value(_ name: String, required: Bool) throws(CNIError) -> String? {
            let text = variables[name].flatMap { $0.isEmpty ? nil : $0 }
            if text == nil && required {
                throw CNIError(code: CNIError.invalidEnvironment, msg: "\(name) is not set", details: "CNI_COMMAND \(commandText) needs it")
            }
            return text
        }
        let needed = command != .version
        containerID = try value("CNI_CONTAINERID", required: needed) ?? ""
        netns = try value("CNI_NETNS", required: command == .add || command == .check)
        ifname = try value("CNI_IFNAME", required: needed) ?? ""
        path = (try value("CNI_PATH", required: needed) ?? "").split(separator: ":").map(String.init)
    }

    /// The variables as `NAME=value` strings, `CNI_COMMAND` replaced by `command` (a failed ADD releases
    /// its lease with DEL).
    public func environment(command override: Command) -> [String] {
        var copy = variables
        copy["CNI_COMMAND"] = override.rawValue
        return copy.map { "\($0.key)=\($0.value)" }
    }
}
