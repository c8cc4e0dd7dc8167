import TundJSON
import NetAddress
import TundCore

/// Turns the body of `POST /devices` into a `DeviceSpec`, naming the field of the first problem.
/// Shape and types are checked here; values that need domain rules are checked by `DeviceSpec.validate`.
enum DeviceRequest {
    static let fields: Set<String> = ["name", "ifname", "netns", "type", "mtu", "up", "owner", "group", "queues", "mac", "addresses", "routes", "worker", "policy", "offload"]
    static let patchFields: Set<String> = ["mtu", "up", "worker", "policy"]
    static let routeFields: Set<String> = ["destination", "gateway", "metric"]
    static let workerFields: Set<String> = Set(["mode", "local", "remote"]).union(WireGuardJSON.workerFields)

    /// The body of `PUT /devices`: `{"devices": [...]}`, each member what `POST /devices` takes; a
    /// member's problem is named `devices[I].FIELD`.
    static func decodeSet(_ body: JSONValue) throws(TundError) -> [DeviceSpec] {
        guard case .object(let fields) = body else { throw .invalidRequest("the body must be a JSON object {\"devices\": [...]}") }
        guard fields.count == 1, fields[0].0 == "devices", case .array(let members) = fields[0].1 else {
            throw .invalidRequest("the body must be {\"devices\": [...]}, with nothing else beside the array")
        }
        var specs: [DeviceSpec] = []
        for (position, member) in members.enumerated() {
            var named = ""
            if case .object(let members) = member, let name = members.first(where: { $0.0 == "name" }), case .string(let text) = name.1 {
                named = "device \(text.prefix(63)): "
            }
            do throws(TundError) {
                specs.append(try decode(member))
            } catch .invalidField(let field, let reason) {
                throw .invalidField(field: "devices[\(position)].\(field)", reason: named + reason)
            } catch .invalidRequest(let reason) {
                throw .invalidField(field: "devices[\(position)]", reason: named + reason)
            }
        }
        return specs
    }

    static func decode(_ body: JSONValue) throws(TundError) -> DeviceSpec {
        let object = try FieldReader(body, path: nil, allowed: fields)
        let kindName = try object.string("type", required: true)!
        guard let kind = DeviceKind(rawValue: kindName) else {
            throw .invalidField(field: "type", reason: "must be \"tun\" or \"tap\", got \"\(kindName)\"")
        }
        var spec = DeviceSpec(kind: kind)
        spec.name = try object.string("name")
        spec.ifname = try object.string("ifname")
        spec.netns = try object.string("netns")
        spec.up = try object.bool("up") ?? true
        spec.owner = try object.integer("owner", in: 0...4_294_967_294)
        spec.group = try object.integer("group", in: 0...4_294_967_294)
        spec.queues = try object.integer("queues", in: Int64(DeviceSpec.queueRange.lowerBound)...Int64(DeviceSpec.queueRange.upperBound)).map(Int.init) ?? 1
        if let mac = try object.string("mac") {
            guard let parsed = MACAddress(mac) else {
                throw .invalidField(field: "mac", reason: "\"\(mac)\" is not a MAC address like 02:00:00:00:00:01")
            }
            spec.mac = parsed
        }
        spec.addresses = try object.array("addresses").enumerated().map { (index, item) throws(TundError) in
            try prefix(item, field: "addresses[\(index)]")
        }
        spec.routes = try object.array("routes").enumerated().map { (index, item) throws(TundError) in
            try route(item, field: "routes[\(index)]")
        }
        let worker = try workerConfiguration(object) ?? WorkerConfiguration(mode: .count)
        spec.mtu = try object.integer("mtu", in: Int64(DeviceSpec.mtuRange.lowerBound)...Int64(DeviceSpec.mtuRange.upperBound)).map(Int.init)
            ?? DeviceSpec.defaultMTU(for: worker.mode)
        spec.workerMode = worker.mode
        spec.tunnel = worker.tunnel
        spec.wireguard = worker.wireguard
        spec.policy = try policy(object) ?? .repair
        spec.offload = try object.bool("offload") ?? false
        try spec.validate()
        return spec
    }

    /// The body of `PATCH /devices/{name}`: only the fields to change.
    static func decodePatch(_ body: JSONValue) throws(TundError) -> DevicePatch {
        let object = try FieldReader(body, path: nil, allowed: patchFields)
        var patch = DevicePatch()
        patch.mtu = try object.integer("mtu", in: Int64(DeviceSpec.mtuRange.lowerBound)...Int64(DeviceSpec.mtuRange.upperBound)).map(Int.init)
        patch.up = try object.bool("up")
        patch.worker = try workerConfiguration(object)
        patch.policy = try policy(object)
        return patch
    }

    /// `{"address": "10.0.0.1/24"}` for `POST /devices/{name}/addresses`.
    static func decodeAddress(_ body: JSONValue) throws(TundError) -> IPPrefix {
        let object = try FieldReader(body, path: nil, allowed: ["address"])
        guard let value = try object.value("address", required: true) else { fatalError("required") }
        return try prefix(value, field: "address")
    }

    /// `{"destination": ..., "gateway": ..., "metric": ...}` for `POST /devices/{name}/routes`.
    static func decodeRoute(_ body: JSONValue) throws(TundError) -> RouteSpec {
        do {
            let parsed = try route(body, field: "route")
            try parsed.validate(fieldPrefix: "")
            return parsed
        } catch {
            // Top-level fields are named without the "route." prefix a nested route would carry.
            if case .invalidField(let field, let reason) = error, field.hasPrefix("route.") {
                throw .invalidField(field: String(field.dropFirst("route.".count)), reason: reason)
            }
            if case .invalidField("route", _) = error { throw .invalidRequest("the body must be a JSON object") }
            throw error
        }
    }

    /// `worker`: `{"mode": "count"}`, or `{"mode": "tunnel", "local": "IP:PORT", "remote": "IP:PORT"}`.
    private static func workerConfiguration(_ object: FieldReader) throws(TundError) -> WorkerConfiguration? {
        guard let worker = try object.object("worker") else { return nil }
        let reader = try FieldReader(worker, path: "worker", allowed: workerFields)
        let modeName = try reader.string("mode") ?? WorkerMode.count.rawValue
        guard let mode = WorkerMode(rawValue: modeName) else {
            throw .invalidField(field: "worker.mode", reason: "must be one of \(WorkerMode.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")), got \"\(modeName)\"")
        }
        func endpoint(_ key: String) throws(TundError) -> SocketAddress? {
            guard let text = try reader.string(key) else { return nil }
            guard let address = SocketAddress(text) else {
                throw .invalidField(field: "worker.\(key)", reason: "\"\(text)\" is not IPv4:PORT or [IPv6]:PORT with a port from 1 to 65535")
            }
            return address
        }
        let local = try endpoint("local"), remote = try endpoint("remote")
        let wireguard = try WireGuardJSON.decode(reader)
        switch (local, remote) {
        case (let local?, let remote?): return WorkerConfiguration(mode: mode, tunnel: TunnelSpec(local: local, remote: remote), wireguard: wireguard)
        case (nil, nil): return WorkerConfiguration(mode: mode, wireguard: wireguard)
        case (nil, _): throw .invalidField(field: "worker.local", reason: "a tunnel needs both local and remote")
        case (_, nil): throw .invalidField(field: "worker.remote", reason: "a tunnel needs both local and remote")
        }
    }

    private static func policy(_ object: FieldReader) throws(TundError) -> DriftPolicy? {
        guard let policy = try object.string("policy") else { return nil }
        guard let parsed = DriftPolicy(rawValue: policy) else {
            throw .invalidField(field: "policy", reason: "must be \"repair\" or \"report\", got \"\(policy)\"")
        }
        return parsed
    }

    static func prefix(_ value: JSONValue, field: String) throws(TundError) -> IPPrefix {
        guard case .string(let text) = value else {
            throw .invalidField(field: field, reason: "must be a string like \"10.0.0.1/24\", got \(value.typeDescription)")
        }
        switch IPPrefix.parse(text) {
        case .success(let prefix): return prefix
        case .failure(.badAddress):
            throw .invalidField(field: field, reason: "\"\(text)\" is not an IPv4 or IPv6 address with an optional /prefix-length")
        case .failure(.badLength(let maximum)):
            throw .invalidField(field: field, reason: "\"\(text)\" has a bad prefix length; it must be 0 to \(maximum)")
        }
    }

    static func route(_ value: JSONValue, field: String) throws(TundError) -> RouteSpec {
        let reader = try FieldReader(value, path: field, allowed: routeFields)
        guard let destination = try reader.value("destination", required: true) else { fatalError("required") }
        var route = RouteSpec(destination: try prefix(destination, field: "\(field).destination"))
        if let gateway = try reader.string("gateway") {
            guard let address = IPAddress(gateway) else {
                throw .invalidField(field: "\(field).gateway", reason: "\"\(gateway)\" is not an IPv4 or IPv6 address")
            }
            route.gateway = address
        }
        route.metric = try reader.integer("metric", in: 0...4_294_967_295).map(UInt32.init)
        return route
    }
}

/// Reads typed fields out of a JSON object, rejecting unknown keys (a misspelt `mut` must not be
/// silently ignored) and naming the full path of any bad field.
struct FieldReader {
    let members: [(String, JSONValue)]
    let path: String?

    init(_ value: JSONValue, path: String?, allowed: Set<String>) throws(TundError) {
        guard case .object(let members) = value else {
            if let path { throw .invalidField(field: path, reason: "must be an object, got \(value.typeDescription)") }
            throw .invalidRequest("the body must be a JSON object, got \(value.typeDescription)")
        }
        self.members = members
        self.path = path
        if let unknown = members.first(where: { !allowed.contains($0.0) }) {
            throw .invalidField(field: qualified(unknown.0), reason: "unknown field; allowed: \(allowed.sorted().joined(separator: ", "))")
        }
    }

    func qualified(_ key: String) -> String { path.map { "\($0).\(key)" } ?? key }

    /// The value, or nil when absent or null. `required` makes absence an error.
    func value(_ key: String, required: Bool = false) throws(TundError) -> JSONValue? {
        let found = members.first { $0.0 == key }?.1
        if found == nil || found == .null {
            if required { throw .invalidField(field: qualified(key), reason: "is required") }
            return nil
        }
        return found
    }

    func string(_ key: String, required: Bool = false) throws(TundError) -> String? {
        guard let value = try value(key, required: required) else { return nil }
        guard case .string(let text) = value else {
            throw .invalidField(field: qualified(key), reason: "must be a string, got \(value.typeDescription)")
        }
        return text
    }

    func bool(_ key: String) throws(TundError) -> Bool? {
        guard let value = try value(key) else { return nil }
        guard case .bool(let flag) = value else {
            throw .invalidField(field: qualified(key), reason: "must be true or false, got \(value.typeDescription)")
        }
        return flag
    }

    func integer(_ key: String, in range: ClosedRange<Int64>) throws(TundError) -> Int64? {
        guard let value = try value(key) else { return nil }
        let reason = "must be an integer from \(range.lowerBound) to \(range.upperBound)"
        switch value {
        case .integer(let number):
            guard range.contains(number) else { throw .invalidField(field: qualified(key), reason: "\(reason), got \(number)") }
            return number
        case .number(let number):
            throw .invalidField(field: qualified(key), reason: "\(reason), got \(number)")
        default:
            throw .invalidField(field: qualified(key), reason: "\(reason), got \(value.typeDescription)")
        }
    }

    func array(_ key: String) throws(TundError) -> [JSONValue] {
        guard let value = try value(key) else { return [] }
        guard case .array(let items) = value else {
            throw .invalidField(field: qualified(key), reason: "must be an array, got \(value.typeDescription)")
        }
        return items
    }

    func object(_ key: String) throws(TundError) -> JSONValue? {
        guard let value = try value(key) else { return nil }
        guard case .object = value else {
            throw .invalidField(field: qualified(key), reason: "must be an object, got \(value.typeDescription)")
        }
        return value
    }
}
