import ArgumentParser
import TundClient
import TundJSON

/// `devices create [NAME] ...`: POST /devices, then the device as `devices show` prints it.
struct CreateDevice: TundCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Create a TUN or TAP device with its MTU, addresses and routes.",
        discussion: """
            Prints the created device like `devices show` (with --json, tund's answer).

            Examples:
              tundctl devices create tun0 --mtu 1400 --address 10.10.0.1/24 \\
                  --route 10.20.0.0/16,via=10.10.0.2
              tundctl devices create --type tap --mac 02:00:00:00:00:42 --queues 2
              tundctl devices create vpn0 --address 10.202.0.1/24 \\
                  --local 10.201.0.1:7000 --remote 10.201.0.2:7000
            """)

    enum DeviceType: String, ExpressibleByArgument, CaseIterable {
        case tun, tap
    }

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The device's name (at most 15 bytes of letters, digits, _ - .). Omitted, the kernel picks tunN or tapN.")
    var name: String?
    @Option(help: "tun (IP packets) or tap (Ethernet frames).") var type: DeviceType = .tun
    @Option(help: "The MTU (68 to 65535 for tun, 68 to 65521 for tap). Default 1500.") var mtu: Int?
    @Flag(help: "Leave the link down (it is set up by default).") var down = false
    @Option(name: .customLong("address"), help: ArgumentHelp("An address with its prefix length, like 10.10.0.1/24 or fd00::1/64. Repeatable.", valueName: "cidr"))
    var addresses: [String] = []
    @Option(name: .customLong("route"), help: ArgumentHelp("A route: DEST[,via=GATEWAY][,metric=METRIC], like 10.20.0.0/16,via=10.10.0.2. Repeatable.", valueName: "route"))
    var routes: [RouteArgument] = []
    @Option(help: "Number of queues (multi-queue device, one worker thread per queue). Default 1.") var queues: Int?
    @Option(help: "The MAC address of a tap device, like 02:00:00:00:00:42.") var mac: String?
    @Option(help: "The user id allowed to open the device.") var owner: Int64?
    @Option(help: "The group id allowed to open the device.") var group: Int64?
    @Option(help: "What tund does with drift: repair (the default) or report.") var policy: DriftPolicyArgument?
    @OptionGroup var worker: WorkerArguments
    @Option(name: .customLong("idempotency-key"), help: ArgumentHelp("Makes retries safe: the same key and request answer with the device the first one made.", valueName: "key"))
    var idempotencyKey: String?

    /// The request body; only the fields given are sent, so tund applies its documented defaults.
    var body: JSONValue {
        var fields: [(String, JSONValue)] = []
        if let name { fields.append(("name", .string(name))) }
        fields.append(("type", .string(type.rawValue)))
        if let mtu { fields.append(("mtu", .integer(Int64(mtu)))) }
        if down { fields.append(("up", .bool(false))) }
        if let owner { fields.append(("owner", .integer(owner))) }
        if let group { fields.append(("group", .integer(group))) }
        if let queues { fields.append(("queues", .integer(Int64(queues)))) }
        if let mac { fields.append(("mac", .string(mac))) }
        if !addresses.isEmpty { fields.append(("addresses", .array(addresses.map(JSONValue.string)))) }
        if !routes.isEmpty { fields.append(("routes", .array(routes.map(\.json)))) }
        if let policy { fields.append(("policy", .string(policy.rawValue))) }
        if let worker = worker.json { fields.append(("worker", worker)) }
        return .object(fields)
    }

    func execute(_ api: APIClient) throws {
        let headers = idempotencyKey.map { [(name: "Idempotency-Key", value: $0)] } ?? []
        let response = try api.send("POST", APIPaths.devices, json: body, headers: headers)
        if response.head.header("Idempotent-Replayed") == "true" {
            StandardStreams.err("note: replayed: an earlier request with this idempotency key created the device\n")
        }
        if global.json { return try printJSON(response) }
        try StandardStreams.out(DeviceText.detail(try response.json()))
    }
}

/// `--worker-mode`, `--local`, `--remote`: the packet worker, for create and set. A tunnel endpoint
/// alone implies `--worker-mode tunnel`.
struct WorkerArguments: ParsableArguments {
    @Option(name: .customLong("worker-mode"), help: ArgumentHelp("The packet worker's mode: count, echo, responder or tunnel.", valueName: "mode"))
    var mode: String?
    @Option(help: ArgumentHelp("A tunnel's local UDP endpoint, IPv4:PORT or [IPv6]:PORT (implies --worker-mode tunnel).", valueName: "address:port"))
    var local: String?
    @Option(help: ArgumentHelp("A tunnel's peer, IPv4:PORT or [IPv6]:PORT (implies --worker-mode tunnel).", valueName: "address:port"))
    var remote: String?

    /// The `worker` object, or nil when no option was given.
    var json: JSONValue? {
        guard mode != nil || local != nil || remote != nil else { return nil }
        var fields: [(String, JSONValue)] = [("mode", .string(mode ?? "tunnel"))]
        if let local { fields.append(("local", .string(local))) }
        if let remote { fields.append(("remote", .string(remote))) }
        return .object(fields)
    }
}

/// `--route DEST[,via=GATEWAY][,metric=METRIC]` (`gateway=` is accepted for `via=`).
/// Only the shape is checked here; tund validates the addresses and says which field is wrong.
struct RouteArgument: ExpressibleByArgument {
    let destination: String
    let gateway: String?
    let metric: Int64?

    init?(argument: String) {
        let parts = argument.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard let first = parts.first, !first.isEmpty, !first.contains("=") else { return nil }
        destination = first
        var gateway: String?
        var metric: Int64?
        for part in parts.dropFirst() {
            let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2, !pair[1].isEmpty else { return nil }
            switch pair[0] {
            case "via", "gateway": gateway = pair[1]
            case "metric":
                guard let value = Int64(pair[1]), value >= 0 else { return nil }
                metric = value
            default: return nil
            }
        }
        self.gateway = gateway
        self.metric = metric
    }

    var json: JSONValue {
        var fields: [(String, JSONValue)] = [("destination", .string(destination))]
        if let gateway { fields.append(("gateway", .string(gateway))) }
        if let metric { fields.append(("metric", .integer(metric))) }
        return .object(fields)
    }
}
