import TundJSON

/// One invocation of tund-cni: the runtime's environment and standard input in, a result or an error
/// result out. Everything the plugin does to the world goes through tund and the IPAM plugin.
public struct CNIPlugin {
    /// What to print on standard output, and the exit status.
    public struct Answer {
        public let output: JSONValue
        public let status: Int32

        /// The error result for `error`, written in `cniVersion`.
        public static func failure(_ error: CNIError, cniVersion: String = CNIVersion.current) -> Answer {
            Answer(output: error.json(cniVersion: cniVersion), status: 1)
        }
    }

    let environment: CNIEnvironment
    let config: NetworkConfig
    /// Standard input as received, handed to the IPAM plugin unchanged.
    let configuration: [UInt8]

    public static func run(environment variables: [String: String], input: [UInt8]) -> Answer {
        // Errors are written in the configuration's version when it could be read.
        var version = CNIVersion.current
        do {
            let environment = try CNIEnvironment(variables)
            if environment.command == .version { return Answer(output: CNIVersion.versionResult, status: 0) }
            let config = try NetworkConfig(parsing: input)
            version = config.cniVersion
            let plugin = CNIPlugin(environment: environment, config: config, configuration: input)
            switch environment.command {
            case .add: return Answer(output: try plugin.add(), status: 0)
            case .del: try plugin.delete()
            case .check: try plugin.check()
            case .version: break
            }
            // DEL and CHECK print nothing on success.
            return Answer(output: .null, status: 0)
        } catch {
            return .failure(error, cniVersion: version)
        }
    }

    var deviceName: String { DeviceName.forContainer(environment.containerID, ifname: environment.ifname) }

    var ipam: IPAMDelegate? {
        config.ipamType.map { IPAMDelegate(type: $0, environment: environment, configuration: configuration) }
    }
}
