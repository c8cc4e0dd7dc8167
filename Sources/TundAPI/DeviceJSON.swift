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

    static func statistics(_ statistics: DeviceStatistics) -> JSONValue {
        var worker = queueCounters(statistics.worker.total)
        worker.insert(contentsOf: [("mode", .string(statistics.worker.mode.rawValue)), ("running", .bool(statistics.worker.running))], at: 0)
        worker.append(("last_packet_at", .optional(statistics.worker.lastPacketAt)))
        worker.append(("queues", .array(statistics.worker.queues.map { queue in
            .object([("queue", .integer(Int64(queue.queue)))] + queueCounters(queue))
        })))
        return .object([
            ("name", .string(statistics.name)),
            ("worker", .object(worker)),
            ("kernel", statistics.kernel.map(kernelCounters) ?? .null),
            ("drift", .object([
                ("detected", .integer(Int64(statistics.driftDetected))), ("repaired", .integer(Int64(statistics.driftRepaired))),
            ])),
        ])
    }

    /// A queue's counters from the counter table, in its order: top-level counters, then each group as an
    /// object; `dropped` (the sum of `dropped_reasons`) comes just before that group.
    private static func queueCounters(_ values: QueueCounterValues) -> [(String, JSONValue)] {
        var fields: [(String, JSONValue)] = []
        fields.reserveCapacity(counterLayout.fields.count + 2 * counterLayout.groups.count)
        for (counter, key) in counterLayout.fields { fields.append((key, .count(values[counter]))) }
        for group in counterLayout.groups {
            if group.name == "dropped_reasons" { fields.append(("dropped", .count(values.dropped))) }
            fields.append((group.name, .object(group.fields.map { ($0.key, .count(values[$0.counter])) })))
        }
        return fields
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

    private static func kernelCounters(_ counters: KernelCounters) -> JSONValue {
        .object([
            ("rx_packets", .count(counters.rxPackets)), ("tx_packets", .count(counters.txPackets)),
            ("rx_bytes", .count(counters.rxBytes)), ("tx_bytes", .count(counters.txBytes)),
            ("rx_errors", .count(counters.rxErrors)), ("tx_errors", .count(counters.txErrors)),
            ("rx_dropped", .count(counters.rxDropped)), ("tx_dropped", .count(counters.txDropped)),
            ("multicast", .count(counters.multicast)), ("collisions", .count(counters.collisions)),
        ])
    }
}
