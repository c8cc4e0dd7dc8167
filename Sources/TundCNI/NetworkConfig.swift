import TundClient
import TundJSON

/// The network configuration the runtime passes on standard input (SPEC.md, "Network configuration"),
/// with tund-cni's own fields:
///
///     {"cniVersion": "1.0.0", "name": "vms", "type": "tund-cni",
///      "server": "unix:/run/tund/tund.sock", "token_file": "/etc/tund/token",
///      "device": {"type": "tap", "mtu": 1500, "worker": {"mode": "none"}},
///      "ipam": {"type": "host-local", "subnet": "10.88.0.0/24"}}
///
/// `server` defaults to tundctl's default; `token_file`, `device` and `ipam` are optional.
public struct NetworkConfig {
    public let cniVersion: String
    public let name: String
    public let server: ServerAddress
    public let tokenFile: String?
    /// Fields copied into the device's JSON (type, mtu, worker, owner, ...).
    public let device: [(String, JSONValue)]
    /// The IPAM plugin to delegate to; nil: the device gets no addresses.
    public let ipamType: String?
    /// The result of the ADD being checked (CHECK), or of the previous plugin in a chain.
    public let prevResult: JSONValue?

    /// Fields tund-cni sets itself from the runtime's parameters and the IPAM result.
    public static let derivedDeviceFields = ["name", "ifname", "netns", "addresses", "routes"]

    /// Parses and checks the configuration. The version is checked first, so an unsupported one is
    /// reported as such (code 1) even if the rest is not understood.
    public init(parsing bytes: [UInt8]) throws(CNIError) {
        let json: JSONValue
        do {
            json = try JSONValue.parse(bytes)
        } catch {
            switch error {
            case .invalid(let reason): throw CNIError(code: CNIError.decodingFailed, msg: "the network configuration is not JSON", details: reason)
            }
        }
        guard json.objectValue != nil else {
            throw CNIError(code: CNIError.decodingFailed, msg: "the network configuration is not a JSON object")
        }
        cniVersion = try Self.string(json, "cniVersion")
        guard CNIVersion.supported.contains(cniVersion) else {
            throw CNIError(code: CNIError.incompatibleVersion, msg: "unsupported cniVersion \(cniVersion)",
                           details: "tund-cni supports \(CNIVersion.supported.joined(separator: ", "))")
        }
        name = try Self.string(json, "name")
        _ = try Self.string(json, "type")
        let serverText = try Self.optionalString(json, "server") ?? ServerAddress.defaultURL
        do {
            server = try ServerAddress(parsing: serverText)
        } catch {
            throw CNIError(code: CNIError.invalidConfig, msg: "server \(error.text): \(error.reason)")
        }
        tokenFile = try Self.optionalString(json, "token_file")
        device = try Self.deviceFields(json["device"])
        if let ipam = json["ipam"], ipam != .null {
            guard ipam.objectValue != nil else { throw Self.invalid("ipam must be an object") }
            ipamType = try Self.string(ipam, "type", label: "ipam.type")
        } else {
            ipamType = nil
        }
        prevResult = json["prevResult"].flatMap { $0 == .null ? nil : $0 }
    }

    private static func deviceFields(_ value: JSONValue?) throws(CNIError) -> [(String, JSONValue)] {
        guard let value, value != .null else { return [] }
        guard let members = value.objectValue else { throw invalid("device must be an object") }
        if let taken = members.first(where: { derivedDeviceFields.contains($0.0) }) {
            throw invalid("device.\(taken.0) cannot be set: tund-cni sets \(derivedDeviceFields.joined(separator: ", ")) itself")
        }
        return members
    }

    private static func string(_ json: JSONValue, _ key: String, label: String? = nil) throws(CNIError) -> String {
        guard let text = try optionalString(json, key, label: label), !text.isEmpty else { throw invalid("\(label ?? key) is missing") }
        return text
    }

    private static func optionalString(_ json: JSONValue, _ key: String, label: String? = nil) throws(CNIError) -> String? {
        guard let value = json[key], value != .null else { return nil }
        guard let text = value.stringValue else { throw invalid("\(label ?? key) must be a string, not \(value.typeDescription)") }
        return text
    }

    private static func invalid(_ message: String) -> CNIError {
        CNIError(code: CNIError.invalidConfig, msg: "invalid network configuration: \(message)")
    }
}
