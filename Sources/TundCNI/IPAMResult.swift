import NetAddress
import TundJSON

/// What an IPAM plugin allocated (its ADD result, or a CHECK's prevResult): in any supported version,
/// `ips` of `{"address": "10.88.0.2/24", "gateway"?: "10.88.0.1"}`, `routes` of `{"dst", "gw"?}`, and `dns`.
public struct IPAMResult: Equatable {
    public struct IP: Equatable {
        public let address: IPPrefix
        public let gateway: IPAddress?
    }

    public struct Route: Equatable {
        public let destination: IPPrefix
        public let gateway: IPAddress?
    }

    public let ips: [IP]
    public let routes: [Route]
    /// Passed through to the runtime as it came.
    public let dns: JSONValue?

    public init(ips: [IP] = [], routes: [Route] = [], dns: JSONValue? = nil) {
        self.ips = ips
        self.routes = routes
        self.dns = dns
    }

    /// Reads a result; `what` names it in messages ("the IPAM result", "prevResult").
    public init(_ json: JSONValue, what: String) throws(CNIError) {
        func failure(_ message: String) -> CNIError {
            CNIError(code: CNIError.decodingFailed, msg: "\(what) cannot be read: \(message)")
        }
        guard json.objectValue != nil else { throw failure("it is not a JSON object") }
        var ips: [IP] = []
        for (index, item) in (json["ips"]?.arrayValue ?? []).enumerated() {
            guard let address = Self.prefix(item["address"]) else {
                throw failure("ips[\(index)].address is not an address with a prefix length")
            }
            ips.append(IP(address: address, gateway: try Self.address(item["gateway"], "ips[\(index)].gateway", failure)))
        }
        var routes: [Route] = []
        for (index, item) in (json["routes"]?.arrayValue ?? []).enumerated() {
            guard let destination = Self.prefix(item["dst"]) else {
                throw failure("routes[\(index)].dst is not a prefix")
            }
            routes.append(Route(destination: destination, gateway: try Self.address(item["gw"], "routes[\(index)].gw", failure)))
        }
        self.init(ips: ips, routes: routes, dns: json["dns"])
    }

    /// CIDR notation only: IPPrefix alone would read a bare address as a /32, which no result means.
    private static func prefix(_ value: JSONValue?) -> IPPrefix? {
        guard let text = value?.stringValue, text.contains("/"), case .success(let prefix) = IPPrefix.parse(text) else { return nil }
        return prefix
    }

    private static func address(_ value: JSONValue?, _ field: String, _ failure: (String) -> CNIError) throws(CNIError) -> IPAddress? {
        guard let value, value != .null else { return nil }
        guard let text = value.stringValue, let address = IPAddress(text) else { throw failure("\(field) is not an IP address") }
        return address
    }

    /// The gateway a route without one goes through: the first gateway of the route's family among the
    /// IPs, as the reference plugins do; nil when there is none (an on-link route).
    public func gateway(for route: Route) -> IPAddress? {
        route.gateway ?? ips.lazy.compactMap(\.gateway).first { $0.family == route.destination.family }
    }
}
