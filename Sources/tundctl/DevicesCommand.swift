import ArgumentParser
import TundClient
import TundJSON

/// `tundctl devices ...`: the devices tund manages.
struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "List, show, create, change and delete devices.",
        subcommands: [ListDevices.self, ShowDevice.self, CreateDevice.self, SetDevice.self, DeleteDevice.self],
        defaultSubcommand: ListDevices.self)
}

/// `devices list`: GET /devices as a table (or the answer itself with --json).
struct ListDevices: TundCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List the devices with their live state.",
        discussion: "Columns: NAME TYPE MTU UP QUEUES ADDRESSES WORKER PRESENT DRIFT, where UP is the stored link state, PRESENT says whether the kernel has the link now, and DRIFT counts changes made behind tund's back as detected/repaired.",
        aliases: ["ls"])

    @OptionGroup var global: GlobalOptions
    @Option(help: "Only the devices of this network namespace, as they give it (\"\" for tund's own).")
    var netns: String?
    /// `list` is the default subcommand, so `tundctl devices lst` lands here with "lst" as an argument;
    /// caught, it is named as the mistyped subcommand it is, instead of printing list's usage.
    @Argument(help: .hidden) var stray: [String] = []

    func validate() throws {
        guard let word = stray.first else { return }
        let names = DevicesCommand.configuration.subcommands.map { $0.configuration.commandName ?? "" }
        StandardStreams.err("error: '\(word)' is not a subcommand of 'tundctl devices' (those are: \(names.joined(separator: ", "))); see 'tundctl devices --help'\n")
        throw ExitCode(ExitStatus.usage.rawValue)
    }

    func execute(_ api: APIClient) throws {
        let response = try api.get(APIPaths.devices(netns: netns))
        if global.json { return try printJSON(response) }
        let devices = try response.json()["devices"]?.arrayValue ?? []
        try StandardStreams.out(devices.isEmpty ? "no devices\n" : DeviceText.table(devices))
    }
}

/// `devices show NAME`: GET /devices/{name} as a key: value block.
struct ShowDevice: TundCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Show one device: its configuration, routes with their ids, kernel state and drift.")

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The device's name.") var name: String

    func execute(_ api: APIClient) throws {
        let response = try api.get(APIPaths.device(name))
        if global.json { return try printJSON(response) }
        try StandardStreams.out(DeviceText.detail(try response.json()))
    }
}

/// `devices delete NAME`: DELETE /devices/{name}.
struct DeleteDevice: TundCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete a device: stop its worker and remove the link with its addresses and routes.",
        discussion: "Prints nothing with --json (tund answers 204 No Content).",
        aliases: ["del", "rm"])

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The device's name.") var name: String
    @Option(name: .customLong("if-match"), help: ArgumentHelp("Only if the device is still at this generation (else 412 precondition_failed).", valueName: "generation"))
    var ifMatch: Int64?

    func execute(_ api: APIClient) throws {
        _ = try api.send("DELETE", APIPaths.device(name), headers: ifMatchHeader(ifMatch))
        if !global.json { try StandardStreams.out("deleted \(name)\n") }
    }
}

/// `devices set NAME ...`: PATCH /devices/{name} with only the fields given.
struct SetDevice: TundCommand {
    static let configuration = CommandConfiguration(
        commandName: "set", abstract: "Change a live device's MTU, link state, drift policy or worker (never re-created).",
        discussion: """
            Prints the device as it is after the change, like `devices show`. A worker option replaces the
            whole worker: give --local and --remote together to move a tunnel.
            """)

    enum LinkState: String, EnumerableFlag {
        case up, down
        static func help(for value: LinkState) -> ArgumentHelp? {
            value == .up ? "Set the link up." : "Set the link down (its routes stay stored and come back when it is up)."
        }
    }

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The device's name.") var name: String
    @Option(help: "The new MTU (68 to 65535 for tun, 68 to 65521 for tap; at least 1280 with IPv6 addresses).") var mtu: Int?
    @Flag var linkState: LinkState?
    @Option(help: "What tund does with drift: repair or report.") var policy: DriftPolicyArgument?
    @OptionGroup var worker: WorkerArguments
    @Option(name: .customLong("if-match"), help: ArgumentHelp("Only if the device is still at this generation (else 412 precondition_failed).", valueName: "generation"))
    var ifMatch: Int64?

    func validate() throws {
        if mtu == nil && linkState == nil && policy == nil && worker.json == nil {
            throw ValidationError("nothing to change: give --mtu, --up, --down, --policy, --worker-mode, --local or --remote")
        }
    }

    func execute(_ api: APIClient) throws {
        var fields: [(String, JSONValue)] = []
        if let mtu { fields.append(("mtu", .integer(Int64(mtu)))) }
        if let linkState { fields.append(("up", .bool(linkState == .up))) }
        if let policy { fields.append(("policy", .string(policy.rawValue))) }
        if let worker = worker.json { fields.append(("worker", worker)) }
        let response = try api.send("PATCH", APIPaths.device(name), json: .object(fields), headers: ifMatchHeader(ifMatch))
        if global.json { return try printJSON(response) }
        try StandardStreams.out(DeviceText.detail(try response.json()))
    }
}

/// `--policy`: what tund does when someone else changes the device.
enum DriftPolicyArgument: String, ExpressibleByArgument, CaseIterable {
    case repair, report
}
