import ArgumentParser
import TundClient
import TundJSON

/// `tundctl addresses ...`: single addresses of a device, added and removed live.
struct AddressesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "addresses", abstract: "Add and remove a device's addresses.",
        subcommands: [ListAddresses.self, AddAddress.self, DeleteAddress.self],
        aliases: ["address", "addr"])
}

/// `addresses list NAME`: the device's stored addresses, one per line.
struct ListAddresses: TundCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List a device's addresses, one per line (--json: {\"addresses\": [...]}).", aliases: ["ls"])

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The device's name.") var name: String

    func execute(_ api: APIClient) throws {
        let addresses = try api.get(APIPaths.device(name)).json()["addresses"] ?? .array([])
        if global.json { return try StandardStreams.out(JSONValue.object([("addresses", addresses)]).serialized() + [0x0a]) }
        let lines = (addresses.arrayValue ?? []).map { DeviceText.text($0) + "\n" }
        try StandardStreams.out(lines.isEmpty ? "no addresses\n" : lines.joined())
    }
}

/// `addresses add NAME CIDR`: POST /devices/{name}/addresses.
struct AddAddress: TundCommand {
    static let configuration = CommandConfiguration(commandName: "add", abstract: "Add an address to a device, live and stored.")

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The device's name.") var name: String
    @Argument(help: "The address with its prefix length, like 10.10.0.5/24 or fd00::5/64.") var address: String
    @Option(name: .customLong("if-match"), help: ArgumentHelp("Only if the device is still at this generation.", valueName: "generation"))
    var ifMatch: Int64?

    func execute(_ api: APIClient) throws {
        let response = try api.send("POST", APIPaths.addresses(name), json: .object([("address", .string(address))]), headers: ifMatchHeader(ifMatch))
        if global.json { return try printJSON(response) }
        let added = try response.json()["address"]?.stringValue ?? address
        try StandardStreams.out("added \(added) to \(name)\n")
    }
}

/// `addresses del NAME ADDRESS`: DELETE /devices/{name}/addresses/{address}, the address percent-encoded.
struct DeleteAddress: TundCommand {
    static let configuration = CommandConfiguration(
        commandName: "del", abstract: "Remove an address from a device.",
        discussion: "ADDRESS may carry its prefix length (10.10.0.5/24) or not (10.10.0.5). Prints nothing with --json.",
        aliases: ["delete", "rm"])

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The device's name.") var name: String
    @Argument(help: "The address, with or without its prefix length.") var address: String
    @Option(name: .customLong("if-match"), help: ArgumentHelp("Only if the device is still at this generation.", valueName: "generation"))
    var ifMatch: Int64?

    func execute(_ api: APIClient) throws {
        _ = try api.send("DELETE", APIPaths.address(name, address), headers: ifMatchHeader(ifMatch))
        if !global.json { try StandardStreams.out("removed \(address) from \(name)\n") }
    }
}
