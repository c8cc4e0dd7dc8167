import ArgumentParser
import TundClient
import TundJSON

/// `tundctl routes ...`: single routes through a device, added and removed live.
struct RoutesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "routes", abstract: "Add and remove routes through a device.",
        subcommands: [ListRoutes.self, AddRoute.self, DeleteRoute.self],
        aliases: ["route"])
}

/// `routes list NAME`: the device's routes with their ids.
struct ListRoutes: TundCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List a device's routes with their ids (--json: {\"routes\": [...]}).", aliases: ["ls"])

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The device's name.") var name: String

    func execute(_ api: APIClient) throws {
        let routes = try api.get(APIPaths.device(name)).json()["routes"] ?? .array([])
        if global.json { return try StandardStreams.out(JSONValue.object([("routes", routes)]).serialized() + [0x0a]) }
        var table = TextTable(["ID", "DESTINATION", "GATEWAY", "METRIC", "ACTIVE"])
        for route in routes.arrayValue ?? [] {
            table.add([DeviceText.text(route["id"]), DeviceText.text(route["destination"]), DeviceText.text(route["gateway"]),
                       DeviceText.text(route["metric"]), route["active"] == .bool(true) ? "yes" : "no"])
        }
        try StandardStreams.out(table.rows.isEmpty ? "no routes\n" : table.rendered())
    }
}

/// `routes add NAME DEST [--via GW] [--metric M]`: POST /devices/{name}/routes; prints the new route's id.
struct AddRoute: TundCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Add a route through a device, live and stored.",
        discussion: """
            Prints the new route's id alone on a line, which `routes del` takes:
              id=$(tundctl routes add tun0 10.30.0.0/16 --via 10.10.0.2)
              tundctl routes del tun0 "$id"
            With --json, prints tund's answer:
              {"id", "destination", "gateway", "metric"}
            """)

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The device's name.") var name: String
    @Argument(help: "The destination prefix, like 10.30.0.0/16 or fd00:30::/48.") var destination: String
    @Option(help: ArgumentHelp("The gateway, which must be reachable on the device.", valueName: "gateway")) var via: String?
    @Option(help: "The route's metric (priority).") var metric: Int64?
    @Option(name: .customLong("if-match"), help: ArgumentHelp("Only if the device is still at this generation.", valueName: "generation"))
    var ifMatch: Int64?

    func execute(_ api: APIClient) throws {
        var fields: [(String, JSONValue)] = [("destination", .string(destination))]
        if let via { fields.append(("gateway", .string(via))) }
        if let metric { fields.append(("metric", .integer(metric))) }
        let response = try api.send("POST", APIPaths.routes(name), json: .object(fields), headers: ifMatchHeader(ifMatch))
        if global.json { return try printJSON(response) }
        try StandardStreams.out(DeviceText.text(try response.json()["id"]) + "\n")
    }
}

/// `routes del NAME ID`: DELETE /devices/{name}/routes/{id}.
struct DeleteRoute: TundCommand {
    static let configuration = CommandConfiguration(
        commandName: "del", abstract: "Remove a route by its id (see `routes list` or `devices show`).",
        discussion: "Prints nothing with --json.", aliases: ["delete", "rm"])

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The device's name.") var name: String
    @Argument(help: "The route's id.") var id: Int64
    @Option(name: .customLong("if-match"), help: ArgumentHelp("Only if the device is still at this generation.", valueName: "generation"))
    var ifMatch: Int64?

    func execute(_ api: APIClient) throws {
        _ = try api.send("DELETE", APIPaths.route(name, id: String(id)), headers: ifMatchHeader(ifMatch))
        if !global.json { try StandardStreams.out("removed route \(id) from \(name)\n") }
    }
}
