import TundJSON
import TundCore

/// Response bodies, with keys in the order the spec documents.
enum DeviceJSON {
    static func device(_ snapshot: DeviceSnapshot) -> JSONValue {
        let record = snapshot.record
        let spec = record.spec
        var state: [(String, JSONValue)] = [("present", .bool(snapshot.link != nil))]
        if let link = snapshot.link {
            state += [
                ("ifindex", .integer(Int64(link.index))),
                ("oper_state", .string(link.operState)),
                ("flags", .array(link.flags.map(JSONValue.string))),
                ("mtu", .integer(Int64(link.mtu))),
            ]
            if spec.kind == .tap, let mac = link.mac { state.append(("mac", .string(mac.description))) }
            state.append(("addresses", .array((snapshot.liveAddresses ?? []).map { .string($0.description) })))
        }
        state.append(("reason", .optional(snapshot.absentReason)))
        state.append(("restore_error", .optional(snapshot.restoreError)))
        let drift = JSONValue.object([
            ("detected", .integer(Int64(snapshot.driftDetected))),
            ("repaired", .integer(Int64(snapshot.driftRepaired))),
            ("last", snapshot.lastDrift.map { last in
                .object([
                    ("at", .string(last.at)), ("findings", .array(last.findings.map(JSONValue.string))),
                    ("repaired", .bool(last.repaired)), ("error", .optional(last.error)),
                ])
            } ?? .null),
        ])
        return .object([
            ("name", .string(record.name)),
            ("ifname", .string(record.kernelName)),
            ("netns", .optional(spec.netns)),
            ("type", .string(spec.kind.rawValue)),
            ("mtu", .integer(Int64(spec.mtu))),
            ("up", .bool(spec.up)),
            ("owner", .optional(spec.owner)),
            ("group", .optional(spec.group)),
            ("queues", .integer(Int64(spec.queues))),
            ("mac", .optional(spec.mac?.description)),
            ("addresses", .array(spec.addresses.map { .string($0.description) })),
            ("routes", .array(record.routes.map { route($0, active: snapshot.activeRouteIDs.contains($0.id)) })),
            ("worker", .object([("mode", .string(spec.workerMode.rawValue))]
                + (spec.tunnel.map { [("local", JSONValue.string($0.local.description)), ("remote", .string($0.remote.description))] } ?? [])
                + (spec.wireguard.map(WireGuardJSON.workerMembers) ?? [])
                + [("running", .bool(snapshot.workerRunning))])),
            ("offload", .bool(spec.offload)),
            ("offloads", .array(snapshot.offloads.map(JSONValue.string))),
            ("policy", .string(spec.policy.rawValue)),
            ("generation", .integer(record.generation)),
            ("state", .object(state)),
            ("drift", drift),
            ("created_at", .string(record.createdAt)),
            ("updated_at", .string(record.updatedAt)),
        ])
    }

    /// `active`: whether the kernel holds the route now (false while the link is down).
    static func route(_ route: DeviceRoute, active: Bool) -> JSONValue {
        .object([
            ("id", .integer(route.id)),
            ("destination", .string(route.spec.destination.description)),
            ("gateway", .optional(route.spec.gateway?.description)),
            ("metric", route.spec.metric.map { .integer(Int64($0)) } ?? .null),
            ("active", .bool(active)),
        ])
    }

    /// `GET /devices/{name}/stats`, written straight to bytes: it answers every scrape of every device.
    static func statistics(_ statistics: DeviceStatistics) -> [UInt8] {
        // Written straight into the answer's own storage, with room for the newline: no buffer to allocate
        // and copy from. A larger answer (many queues, a WireGuard device with many peers) goes on in memory
        // of the writer's own and is copied from there once.
        var larger: [UInt8]?
        let body = [UInt8](unsafeUninitializedCapacity: 4096) { storage, initialized in
            var json = JSONWriter(scratch: storage)
            writeStatistics(statistics, to: &json)
            if json.isInScratch && json.writtenCount < storage.count {
                initialized = json.writtenCount
            } else {
                larger = json.bytes
                initialized = 0
            }
        }
        return larger ?? body
    }

    private static func writeStatistics(_ statistics: DeviceStatistics, to json: inout JSONWriter) {
        json.beginObject()
        json.key(StatsKeys.name)
        json.value(statistics.name)
        json.key(StatsKeys.worker)
        json.beginObject()
        json.key(StatsKeys.mode)
        json.value(statistics.worker.mode.rawValue)
        json.key(StatsKeys.running)
        json.value(statistics.worker.running)
        writeQueueCounters(statistics.worker.total, to: &json)
        json.key(StatsKeys.lastPacketAt)
        json.value(statistics.worker.lastPacketAt)
        json.key(StatsKeys.queues)
        json.beginArray()
        for queue in statistics.worker.queues {
            json.beginObject()
            json.key(StatsKeys.queue)
            json.value(queue.queue)
            writeQueueCounters(queue, to: &json)
            json.endObject()
        }
        json.endArray()
        json.endObject()
        json.key(StatsKeys.kernel)
        if let kernel = statistics.kernel {
            withUnsafeTemporaryAllocation(of: UInt64.self, capacity: KernelCounters.names.count) { numbers in
                kernel.forEachValue { index, value in numbers[index] = value }
                json.members(kernelTemplate, values: UnsafeBufferPointer(numbers))
            }
        } else {
            json.value(nil as String?)
        }
        if statistics.worker.mode == .wireguard {
            json.key(StatsKeys.peers)
            json.raw(JSONValue.array(statistics.peers.map(WireGuardJSON.peerStatus)).serialized())
            json.key(StatsKeys.wireguardDropped)
            json.raw(JSONValue.object(statistics.wireguardDrops.sorted { $0.key < $1.key }.map { ($0.key, .count($0.value)) }).serialized())
        }
        json.key(StatsKeys.drift)
        json.beginObject()
        json.key(StatsKeys.detected)
        json.value(statistics.driftDetected)
        json.key(StatsKeys.repaired)
        json.value(statistics.driftRepaired)
        json.endObject()
        json.endObject()
    }

    /// A queue's counters from the counter table, in its order: top-level counters, then each group as an
    /// object; `dropped` (the sum of `dropped_reasons`) comes just before that group.
    private static func writeQueueCounters(_ values: QueueCounterValues, to json: inout JSONWriter) {
        // The table's values and, after them, `dropped`: the numbers the template's pieces name.
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: Counter.capacity + 1) { numbers in
            values.counts.withValues { counts in
                _ = numbers.initialize(fromContentsOf: counts)
                numbers[Counter.capacity] = Counter.droppedReasons.reduce(0) { $0 &+ counts[$1.rawValue] }
            }
            json.members(counterTemplate, values: UnsafeBufferPointer(numbers))
        }
    }

    /// The counters' members, worked out once from the counter table: the pieces of text between numbers,
    /// each with the counter it precedes (`Counter.capacity` for `dropped`).
    private static let counterTemplate: JSONTemplate = {
        var pieces: [(text: String, source: Int)] = []
        var pending = ""  // text that goes before the next number: commas, closing braces, keys
        func quoted(_ key: String) -> String { String(decoding: JSONValue.string(key).serialized(), as: UTF8.self) }
        func member(_ key: String, _ source: Int, first: Bool = false) {
            pieces.append((pending + (first ? "" : ",") + quoted(key) + ":", source))
            pending = ""
        }
        for (counter, key) in counterLayout.fields { member(key, counter.rawValue, first: pieces.isEmpty) }
        for group in counterLayout.groups {
            if group.name == "dropped_reasons" { member("dropped", Counter.capacity, first: pieces.isEmpty) }
            pending += (pieces.isEmpty && pending.isEmpty ? "" : ",") + quoted(group.name) + ":{"
            for (index, field) in group.fields.enumerated() {
                member(field.key, field.counter.rawValue, first: index == 0)  // an object's first member follows its brace
            }
            pending += "}"
        }
        return JSONTemplate(pieces: pieces, tail: pending)
    }()

    /// The kernel's counters as one object, in the order of `KernelCounters.names`.
    private static let kernelTemplate: JSONTemplate = {
        func quoted(_ key: String) -> String { String(decoding: JSONValue.string(key).serialized(), as: UTF8.self) }
        let pieces = KernelCounters.names.enumerated().map { index, name in ((index == 0 ? "{" : ",") + quoted(name) + ":", index) }
        return JSONTemplate(pieces: pieces, tail: "}")
    }()

    /// The keys of the stats answer, made once.
    private enum StatsKeys {
        static let name = JSONKey("name"), worker = JSONKey("worker"), mode = JSONKey("mode"), running = JSONKey("running")
        static let lastPacketAt = JSONKey("last_packet_at"), queues = JSONKey("queues"), queue = JSONKey("queue")
        static let kernel = JSONKey("kernel"), drift = JSONKey("drift"), detected = JSONKey("detected")
        static let repaired = JSONKey("repaired"), peers = JSONKey("peers")
        static let wireguardDropped = JSONKey("wireguard_dropped")
    }

    /// Where each counter goes, worked out once from the counter table: the top-level ones, then the groups
    /// in order of first appearance.
    private static let counterLayout: (fields: [(counter: Counter, key: String)],
                                       groups: [(name: String, fields: [(counter: Counter, key: String)])]) = {
        var fields: [(counter: Counter, key: String)] = []
        var groups: [(name: String, fields: [(counter: Counter, key: String)])] = []
        for counter in Counter.allCases {
            let (group, key) = counter.json
            guard let group else {
                fields.append((counter, key))
                continue
            }
            if let index = groups.firstIndex(where: { $0.name == group }) {
                groups[index].fields.append((counter, key))
            } else {
                groups.append((group, [(counter, key)]))
            }
        }
        return (fields, groups)
    }()

}
