import TundJSON

/// Devices as people read them: one row of `devices list`, the block of `devices show`, a route line.
/// Reads the device JSON documented in api/openapi.yaml; a missing field shows as "-".
enum DeviceText {
    static let listHeader = ["NAME", "TYPE", "MTU", "UP", "QUEUES", "ADDRESSES", "WORKER", "PRESENT", "DRIFT"]

    /// The `devices list` table. DRIFT is `detected/repaired`.
    static func table(_ devices: [JSONValue]) -> String {
        var table = TextTable(listHeader)
        for device in devices {
            let addresses = device["addresses"]?.arrayValue?.compactMap(\.stringValue) ?? []
            table.add([
                text(device["name"]),
                text(device["type"]),
                text(device["mtu"]),
                yesNo(device["up"]),
                text(device["queues"]),
                addresses.isEmpty ? "-" : addresses.joined(separator: ","),
                worker(device["worker"]),
                yesNo(device["state"]?["present"]),
                "\(text(device["drift"]?["detected"]))/\(text(device["drift"]?["repaired"]))",
            ])
        }
        return table.rendered()
    }

    /// The `devices show` block.
    static func detail(_ device: JSONValue) -> String {
        var block = KeyValueBlock()
        block.add("name", text(device["name"]))
        if let ifname = device["ifname"]?.stringValue, ifname != device["name"]?.stringValue { block.add("ifname", ifname) }
        if let netns = device["netns"]?.stringValue { block.add("netns", netns) }
        block.add("type", text(device["type"]))
        block.add("mtu", text(device["mtu"]))
        block.add("up", yesNo(device["up"]))
        block.add("queues", text(device["queues"]))
        block.add("mac", text(device["mac"]))
        block.add("owner", text(device["owner"]))
        block.add("group", text(device["group"]))
        block.add("policy", text(device["policy"]))
        block.add("generation", text(device["generation"]))
        block.add("worker", "\(text(device["worker"]?["mode"])), \(worker(device["worker"]))"
                  + (device["worker"]?["remote"]?.stringValue.map { ", \(text(device["worker"]?["local"])) -> \($0)" } ?? ""))
        block.add("addresses", lines: device["addresses"]?.arrayValue?.map { text($0) } ?? [])
        block.add("routes", lines: device["routes"]?.arrayValue?.map(route) ?? [])
        block.add("state", lines: state(device["state"]))
        block.add("drift", lines: drift(device["drift"]))
        block.add("created", text(device["created_at"]))
        block.add("updated", text(device["updated_at"]))
        return block.rendered()
    }

    /// `#ID DEST [via GW] [metric M]`
    static func route(_ route: JSONValue) -> String {
        var line = "#\(text(route["id"])) \(text(route["destination"]))"
        if let gateway = route["gateway"]?.stringValue { line += " via \(gateway)" }
        if let metric = route["metric"]?.integerValue { line += " metric \(metric)" }
        if route["active"] == .bool(false) { line += " (inactive)" }
        return line
    }

    private static func state(_ state: JSONValue?) -> [String] {
        guard let state else { return [] }
        var lines: [String] = []
        if state["present"]?.boolValue == true {
            lines.append("present, ifindex \(text(state["ifindex"])), oper \(text(state["oper_state"])), mtu \(text(state["mtu"]))")
            let flags = state["flags"]?.arrayValue?.compactMap(\.stringValue) ?? []
            lines.append("flags " + (flags.isEmpty ? "-" : flags.joined(separator: ",")))
        } else if state["reason"]?.stringValue == "namespace_missing" {
            lines.append("absent: its network namespace is gone")
        } else {
            lines.append("absent from the kernel")
        }
        if let problem = state["restore_error"]?.stringValue { lines.append("restore error: \(problem)") }
        return lines
    }

    private static func drift(_ drift: JSONValue?) -> [String] {
        guard let drift else { return [] }
        var lines = ["detected \(text(drift["detected"])), repaired \(text(drift["repaired"]))"]
        if let last = drift["last"], last != .null {
            let outcome = last["repaired"]?.boolValue == true ? "repaired" : "not repaired"
            lines.append("last at \(text(last["at"])), \(outcome)" + (last["error"]?.stringValue.map { ": \($0)" } ?? ""))
            for finding in last["findings"]?.arrayValue ?? [] { lines.append("  " + text(finding)) }
        }
        return lines
    }

    private static func worker(_ worker: JSONValue?) -> String {
        switch worker?["running"]?.boolValue {
        case true?: "running"
        case false?: "stopped"
        case nil: "-"
        }
    }

    /// A scalar as text: strings as they are, numbers in decimal, null and absence as "-".
    static func text(_ value: JSONValue?) -> String {
        switch value {
        case .string(let text)?: text
        case .integer(let number)?: String(number)
        case .number(let number)?: "\(number)"
        case .bool(let flag)?: flag ? "true" : "false"
        case .array(let items)?: items.map { text($0) }.joined(separator: ",")
        case nil, .null?, .object?: "-"
        }
    }

    static func yesNo(_ value: JSONValue?) -> String {
        switch value?.boolValue {
        case true?: "yes"
        case false?: "no"
        case nil: "-"
        }
    }
}
