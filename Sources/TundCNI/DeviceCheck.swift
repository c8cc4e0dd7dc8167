import NetAddress
import TundJSON

/// CHECK's comparison of tund's device with what ADD reported: the device must be present in the
/// kernel, in the runtime's namespace under the runtime's interface name, and hold every address of
/// the previous result. Extra addresses are not a failure: someone may have added one on purpose.
public enum DeviceCheck {
    /// What is wrong, one sentence each; empty when the device matches.
    public static func problems(device: JSONValue, environment: CNIEnvironment, previous: IPAMResult) -> [String] {
        var problems: [String] = []
        let state = device["state"]
        if state?["present"]?.boolValue != true {
            let reason = state?["reason"]?.stringValue.map { " (\($0))" } ?? ""
            problems.append("the device is not present in the kernel\(reason)")
        }
        let netns = device["netns"]?.stringValue
        if !sameNamespace(netns, environment.netns) {
            problems.append("the device is in namespace \(netns ?? "null"), not \(environment.netns ?? "null")")
        }
        let ifname = device["ifname"]?.stringValue ?? device["name"]?.stringValue
        if ifname != environment.ifname {
            problems.append("the device's interface is \(ifname ?? "null"), not \(environment.ifname)")
        }
        // tund's desired addresses, and the kernel's now (`state.addresses`): someone may have taken one
        // off the link by hand and tund (policy `report`) left it so.
        let stored = prefixes(device["addresses"])
        let live = prefixes(state?["addresses"])
        for ip in previous.ips {
            if !stored.contains(ip.address) {
                problems.append("tund's device does not list \(ip.address)")
            } else if state?["present"]?.boolValue == true, !live.contains(ip.address) {
                problems.append("the link does not hold \(ip.address) now")
            }
        }
        return problems
    }

    private static func prefixes(_ list: JSONValue?) -> Set<IPPrefix> {
        Set((list?.arrayValue ?? []).compactMap { $0.stringValue.flatMap { try? IPPrefix.parse($0).get() } })
    }

    /// tund takes a namespace as a name under /run/netns or as a path; the runtime always gives a path.
    static func sameNamespace(_ a: String?, _ b: String?) -> Bool {
        func path(_ text: String?) -> String? { text.map { $0.hasPrefix("/") ? $0 : "/run/netns/\($0)" } }
        return path(a) == path(b)
    }
}
