import TundCNI
import TundJSON

/// Parameters and configurations as a runtime passes them, for the tests.
enum Fixtures {
    static let addVariables = [
        "CNI_COMMAND": "ADD", "CNI_CONTAINERID": "0123456789abcdef0123", "CNI_NETNS": "/run/netns/c1",
        "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin:/usr/lib/cni", "CNI_ARGS": "K8S_POD_NAME=web",
    ]

    static let config = """
        {"cniVersion": "1.0.0", "name": "vms", "type": "tund-cni", "server": "unix:/run/tund/tund.sock",
         "token_file": "/etc/tund/token",
         "device": {"type": "tap", "mtu": 1500, "worker": {"mode": "none"}},
         "ipam": {"type": "host-local", "subnet": "10.88.0.0/24"}}
        """

    static func environment(_ changes: [String: String?] = [:]) throws -> CNIEnvironment {
        var variables = addVariables
        for (name, value) in changes { variables[name] = value }
        return try CNIEnvironment(variables)
    }

    static func json(_ text: String) throws -> JSONValue { try JSONValue.parse(Array(text.utf8)) }

    /// host-local's ADD result in 1.0.0.
    static let hostLocalResult = """
        {"cniVersion": "1.0.0", "ips": [{"address": "10.88.0.2/24", "gateway": "10.88.0.1"}],
         "routes": [{"dst": "0.0.0.0/0"}, {"dst": "10.99.0.0/16", "gw": "10.88.0.254"}],
         "dns": {"nameservers": ["10.88.0.1"]}}
        """
}
