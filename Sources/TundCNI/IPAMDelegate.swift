import TundJSON

/// Delegation to the IPAM plugin named by `ipam.type` (SPEC.md, "Delegated plugins"): found in
/// CNI_PATH, run with our environment (CNI_COMMAND set to the operation) and our standard input as is.
struct IPAMDelegate {
    let type: String
    let environment: CNIEnvironment
    /// The network configuration exactly as the runtime gave it.
    let configuration: [UInt8]

    /// ADD: the allocated addresses.
    func add() throws(CNIError) -> IPAMResult {
        let output = try run(.add)
        let json: JSONValue
        do {
            json = try JSONValue.parse(output)
        } catch {
            throw CNIError(code: CNIError.decodingFailed, msg: "the IPAM plugin \(type) printed a result that is not JSON")
        }
        return try IPAMResult(json, what: "the result of the IPAM plugin \(type)")
    }

    /// DEL: releases the lease; releasing one that does not exist is success for IPAM plugins too.
    func delete() throws(CNIError) { _ = try run(.del) }

    func check() throws(CNIError) { _ = try run(.check) }

    /// Runs the plugin for `command`; a failure is its own error result when it printed one.
    private func run(_ command: CNIEnvironment.Command) throws(CNIError) -> [UInt8] {
        guard let path = PluginProcess.find(type, in: environment.path) else {
            throw CNIError(code: CNIError.invalidConfig, msg: "no IPAM plugin \(type) in CNI_PATH",
                           details: "searched \(environment.path.joined(separator: ":"))")
        }
        let outcome = try PluginProcess.run(path, environment: environment.environment(command: command), input: configuration)
        guard outcome.status == 0 else {
            if let error = Self.errorResult(outcome.output) { throw error }
            throw CNIError(code: CNIError.ipamFailed, msg: "the IPAM plugin \(type) failed (\(command.rawValue), exit status \(outcome.status))")
        }
        return outcome.output
    }

    /// The plugin's own error result, passed on to the runtime unchanged.
    static func errorResult(_ output: [UInt8]) -> CNIError? {
        guard let json = try? JSONValue.parse(output), let code = json["code"]?.integerValue else { return nil }
        return CNIError(code: Int(code), msg: json["msg"]?.stringValue ?? "", details: json["details"]?.stringValue ?? "")
    }
}
