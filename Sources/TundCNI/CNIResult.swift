import TundJSON

/// The ADD result (SPEC.md, "Success"): the one interface tund made, in the container's namespace, and
/// what IPAM allocated on it, written in the configuration's version.
public enum CNIResult {
    /// `mac` is the tap's address as tund reports it (`state.mac`); tun devices have none.
    public static func add(cniVersion: String, environment: CNIEnvironment, mac: String?, ipam: IPAMResult) -> JSONValue {
        var interface: [(String, JSONValue)] = [("name", .string(environment.ifname))]
        if let mac { interface.append(("mac", .string(mac))) }
        interface.append(("sandbox", .string(environment.netns ?? "")))
        let carryVersion = CNIVersion.ipsCarryVersion(cniVersion)
        let ips: [JSONValue] = ipam.ips.map { ip in
            var fields: [(String, JSONValue)] = []
            if carryVersion { fields.append(("version", .string(ip.address.family == .ipv4 ? "4" : "6"))) }
            fields.append(("address", .string(ip.address.description)))
            if let gateway = ip.gateway { fields.append(("gateway", .string(gateway.description))) }
            fields.append(("interface", .integer(0)))
            return .object(fields)
        }
        let routes: [JSONValue] = ipam.routes.map { route in
            var fields: [(String, JSONValue)] = [("dst", .string(route.destination.description))]
            if let gateway = route.gateway { fields.append(("gw", .string(gateway.description))) }
            return .object(fields)
        }
        var members: [(String, JSONValue)] = [
            ("cniVersion", .string(cniVersion)),
            ("interfaces", .array([.object(interface)])),
            ("ips", .array(ips)),
            ("routes", .array(routes)),
        ]
        if let dns = ipam.dns, dns != .null { members.append(("dns", dns)) }
        return .object(members)
    }
}
