import TundJSON

/// The body of `POST /devices` for one container interface: the derived name, the interface's kernel
/// name and namespace, the configuration's `device` fields as given, then what IPAM allocated.
public enum DeviceBody {
    public static func create(name: String, environment: CNIEnvironment, config: NetworkConfig, ipam: IPAMResult) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("name", .string(name)),
            ("ifname", .string(environment.ifname)),
            ("netns", .optional(environment.netns)),
        ]
        members += config.device
        members.append(("addresses", .array(ipam.ips.map { .string($0.address.description) })))
        members.append(("routes", .array(ipam.routes.map { route in
            var fields: [(String, JSONValue)] = [("destination", .string(route.destination.description))]
            if let gateway = ipam.gateway(for: route) { fields.append(("gateway", .string(gateway.description))) }
            return .object(fields)
        })))
        return .object(members)
    }
}
