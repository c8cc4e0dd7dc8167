import ArgumentParser
import TundClient
import TundJSON

/// `apply -f FILE`: PUT /devices, so tund's devices become exactly the set in FILE; prints the plan it
/// carried out.
struct ApplyCommand: TundCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply", abstract: "Make tund's devices exactly the set in a JSON file: create, change, delete.",
        discussion: """
            FILE is JSON (not YAML): {"devices": [...]} or a bare array [...] of
            devices, each as POST /devices takes it (the fields of `devices
            create`), with its "name"; -f - reads standard input. Devices not in FILE are deleted,
            those that differ are changed live, new ones are created. A
            difference that cannot be applied live (type, queues, offload...)
            is refused (not_live_changeable) unless --recreate is given.
            Run `tundctl diff -f FILE` first to see the plan without applying it.

            Prints one line per device (ACTION NAME; actions create, update,
            recreate, delete, unchanged), a summary and the collection's new
            ETag; with --json, tund's answer. If tund fails half-way, the error
            says what was applied before the failure.

            Examples:
              tundctl apply -f devices.json
              generate-devices | tundctl apply -f -
              tundctl apply -f devices.json --if-match '"42"'
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var file: DeviceSetOptions
    @Option(name: .customLong("if-match"), help: ArgumentHelp(
        "Only if no device changed since the collection had this ETag (printed by `diff`), else 412 precondition_failed.",
        valueName: "etag"))
    var ifMatch: String?
    @Option(help: ArgumentHelp("Seconds to wait for tund's answer; a large set takes a while (each deletion ~20 ms). 0 waits for ever.",
                               valueName: "seconds"))
    var timeout: Double = 300

    var requestTimeout: Double { timeout }

    func validate() throws {
        if timeout < 0 { throw ValidationError("--timeout must be 0 or more seconds") }
        if let ifMatch, ifMatch.trimmingWhitespace().isEmpty { throw ValidationError("--if-match needs an ETag") }
    }

    func execute(_ api: APIClient) throws {
        let body = try file.body()
        let headers = ifMatch.map { [(name: "If-Match", value: PlanText.quotedETag($0))] } ?? []
        let response: APIResponse
        do {
            response = try api.send("PUT", APIPaths.deviceSet(dryRun: false, recreate: file.recreate), json: body, headers: headers)
        } catch var failure as ServerError {
            if failure.code == "not_live_changeable" && !file.recreate {
                failure.hint = "give --recreate to re-create such devices (their worker restarts, their counters start again)"
            } else if failure.code == "precondition_failed" {
                failure.hint = "the devices changed since that ETag: run `tundctl diff -f \(file.path)` again"
            }
            throw failure
        }
        if global.json { return try printJSON(response) }
        try StandardStreams.out(PlanText.render(try response.json(), dryRun: false, etag: response.head.header("ETag")))
    }
}

/// `diff -f FILE`: PUT /devices?dry_run=true, the plan `apply` would carry out; nothing changes.
struct DiffCommand: TundCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff", abstract: "Show what `apply -f FILE` would do, without changing anything.",
        discussion: """
            FILE is JSON, as for `apply`. Prints one line per device (ACTION NAME)
            and a summary of what would change, then the collection's current
            ETag: pass it to `apply --if-match` to apply this plan only if
            nothing changed meanwhile. With --json, tund's answer.
            A difference that cannot be applied live fails the diff as it would
            fail the apply (not_live_changeable) unless --recreate is given.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var file: DeviceSetOptions

    /// A plan touches nothing, but a large set still takes tund a moment to compare.
    var requestTimeout: Double { 60 }

    func execute(_ api: APIClient) throws {
        let body = try file.body()
        let response: APIResponse
        do {
            response = try api.send("PUT", APIPaths.deviceSet(dryRun: true, recreate: file.recreate), json: body)
        } catch var failure as ServerError {
            if failure.code == "not_live_changeable" && !file.recreate {
                failure.hint = "with --recreate, such devices would be re-created"
            }
            throw failure
        }
        if global.json { return try printJSON(response) }
        try StandardStreams.out(PlanText.render(try response.json(), dryRun: true, etag: response.head.header("ETag")))
    }
}

/// `-f FILE` and `--recreate`, shared by `apply` and `diff`.
struct DeviceSetOptions: ParsableArguments {
    @Option(name: [.customShort("f"), .customLong("file")], help: ArgumentHelp(
        "JSON file with the devices: {\"devices\": [...]} or [...]; - for standard input.", valueName: "file"))
    var path: String
    @Flag(help: "Re-create devices whose difference cannot be applied live (type, queues, offload...).")
    var recreate = false

    /// The request body: the file's object as it is, or its array wrapped as `{"devices": [...]}`.
    func body() throws -> JSONValue {
        let label = path == "-" ? "standard input" : path
        let bytes = try LocalFile.read(path == "-" ? nil : path, what: "the device file", limit: 64 * 1024 * 1024)
        return try PlanText.requestBody(bytes, label: label)
    }
}
