import Errno
import NetAddress

/// What a declarative apply does (or would do) to each device, by name.
public struct ApplyPlan: Equatable, Sendable {
    public var create: [String] = []
    public var update: [String] = []
    /// Differences that cannot be applied live (type, queues, ...): deleted and made anew.
    public var recreate: [String] = []
    public var delete: [String] = []
    public var unchanged: [String] = []

    public init() {}

    public var isEmpty: Bool { create.isEmpty && update.isEmpty && recreate.isEmpty && delete.isEmpty }
}

/// `PUT /devices`: the stored and kernel state become exactly a declared set.
///
/// Order, so that a crash at any point converges on the next start (as a single create does):
/// 1. everything is validated and planned before anything is touched;
/// 2. devices to re-create lose their old links; new devices are opened non-persistent and configured,
///    and live changes are made, all netlink requests pipelined;
/// 3. one SQLite transaction writes every row (inserts, updates, deletes);
/// 4. new devices become persistent and get their workers; deleted devices' links go in one group delete.
/// A crash before 3 leaves the old rows: new devices vanish with their descriptors, and restore and drift
/// repair put back what the live changes altered. A crash after 3 leaves the new rows: restore re-creates
/// new devices not yet persistent, and removes links that carry tund's alias without a row.
extension DeviceManager {
    /// The entity tag of the whole set of devices: it changes with every change to any device's desired
    /// state, and never repeats across restarts (it carries a tag drawn at start).
    public var collectionTag: String { devices.withLock { collectionTag($0) } }

    func collectionTag(_ table: DeviceTable) -> String { "\"set-\(instanceTag)-\(table.version)\"" }

    /// Plans and (unless `dryRun`) applies `specs` as the complete desired set. `ifMatch`: the collection
    /// tags the caller accepts (an `If-Match` list); nil accepts any. `positions`: where each spec stands
    /// in the request, when `specs` is part of a larger set (errors name `devices[I]` by it).
    public func apply(_ specs: [DeviceSpec], dryRun: Bool, allowRecreate: Bool, ifMatch: Set<String>? = nil,
                      positions: [Int]? = nil) throws(TundError) -> (plan: ApplyPlan, tag: String) {
        guard isReady else { throw .notReady }
        try Self.validateSet(specs)
        typealias Applied = (plan: ApplyPlan, tag: String, events: [(String, DeviceEvent.Kind, [(String, String)])])
        let outcome = devices.withLock { (table) -> (Result<Applied, TundError>, reattach: [String]) in
            let current = collectionTag(table)
            if let ifMatch, !ifMatch.contains(current) { return (.failure(.collectionChanged(current: current)), []) }
            let plan: ApplyPlan
            do throws(TundError) {
                plan = try makePlan(specs, table: table, allowRecreate: allowRecreate, positions: positions)
            } catch {
                return (.failure(error), [])
            }
            if dryRun || plan.isEmpty { return (.success((plan, current, [])), []) }
            do throws(TundError) {
                let events = try execute(plan, specs: specs, table: &table)
                return (.success((plan, collectionTag(table), events)), [])
            } catch {
                return (.failure(error), plan.recreate)
            }
        }
        let applied: Applied
        switch outcome.0 {
        case .success(let success):
            applied = success
        case .failure(let error):
            // Devices whose old links went for a re-create get them back from their (unchanged) rows.
            if !outcome.reattach.isEmpty { reconcile(Set(outcome.reattach)) }
            throw error
        }
        for (name, kind, detail) in applied.events { events.publish(kind, device: name, detail) }
        if !dryRun && !applied.plan.isEmpty {
            let plan = applied.plan
            logger.info("declared set applied", metadata: [
                "created": "\(plan.create.count)", "updated": "\(plan.update.count)", "recreated": "\(plan.recreate.count)",
                "deleted": "\(plan.delete.count)", "unchanged": "\(plan.unchanged.count)",
            ])
        }
        return (applied.plan, applied.tag)
    }

    /// Names present, unique, and every member valid on its own; fields named `devices[I].FIELD`.
    static func validateSet(_ specs: [DeviceSpec]) throws(TundError) {
        var seen = Set<String>()
        for (position, spec) in specs.enumerated() {
            guard let name = spec.name else {
                throw .invalidField(field: "devices[\(position)].name", reason: "every device of a declared set needs a name")
            }
            guard seen.insert(name).inserted else {
                throw .invalidField(field: "devices[\(position)].name", reason: "\(name) is declared twice")
            }
            do throws(TundError) {
                try spec.validate()
            } catch .invalidField(let field, let reason) {
                throw .invalidField(field: "devices[\(position)].\(field)", reason: "device \(name): \(reason)")
            }
        }
    }

    /// Sorts each declared device into create, update, re-create or unchanged, and each stored one not
    /// declared into delete. Reads the kernel once (a link dump) for names held by others.
    func makePlan(_ specs: [DeviceSpec], table: DeviceTable, allowRecreate: Bool, positions: [Int]? = nil) throws(TundError) -> ApplyPlan {
        var plan = ApplyPlan()
        let declared = Set(specs.compactMap(\.name))
        guard specs.count <= maxDevices else { throw .deviceLimitReached(limit: maxDevices) }
        var foreign: Set<String>?
        for (offset, spec) in specs.enumerated() {
            let position = positions?[offset] ?? offset
            let name = spec.name!
            guard let managed = table[name] else {
                if foreign == nil {
                    foreign = Set(try kernel { () throws(KernelError) in try links.links() }.filter { !owned($0) }.map(\.name))
                }
                if foreign!.contains(spec.kernelName!) { throw .nameInUse(name: spec.kernelName!) }
                plan.create.append(name)
                continue
            }
            let stored = managed.record.spec
            let wanted = Self.normalized(spec, like: stored)
            if wanted == stored && managed.index != nil {
                plan.unchanged.append(name)
            } else if let field = Self.fixedField(stored, wanted) {
                guard allowRecreate else {
                    throw .notLiveChangeable(field: "devices[\(position)].\(field)",
                                             reason: "device \(name): \(field) cannot change on a live device; apply with ?recreate=true to delete and re-create it")
                }
                plan.recreate.append(name)
            } else if managed.index == nil {
                // Not in the kernel (its restore failed): made anew either way.
                plan.recreate.append(name)
            } else {
                plan.update.append(name)
            }
        }
        plan.delete = table.values.map(\.record.name).filter { !declared.contains($0) }.sorted()
        return plan
    }

    /// The declared spec in the stored spec's terms: a MAC left to the kernel is the one it chose, and a
    /// wireguard key left to tund is the one it has.
    static func normalized(_ spec: DeviceSpec, like stored: DeviceSpec) -> DeviceSpec {
        var spec = spec
        if spec.mac == nil { spec.mac = stored.mac }
        spec.wireguard = spec.wireguard?.keepingKey(of: stored.wireguard)
        return spec
    }

    /// The first setting that only a new device can have, if it differs.
    static func fixedField(_ old: DeviceSpec, _ new: DeviceSpec) -> String? {
        if old.kind != new.kind { return "type" }
        if old.ifname != new.ifname { return "ifname" }
        if DeviceSpec.namespaceKey(old.netns) != DeviceSpec.namespaceKey(new.netns) { return "netns" }
        if old.queues != new.queues { return "queues" }
        if old.offload != new.offload { return "offload" }
        if old.owner != new.owner { return "owner" }
        if old.group != new.group { return "group" }
        if old.mac != new.mac { return "mac" }
        return nil
    }

    /// The netlink changes that take a live link from `old` to `new` (`PATCH` and `PUT`): routes and addresses that go, the link's settings, addresses and routes that
    /// come. `ip link set` with systemd-networkd's memory: a link that goes down loses its routes to the
    /// kernel (they stay stored, inactive), and one that comes up gets them all back. Linux also drops a
    /// link's IPv6 addresses when it goes down (keep_addr_on_down=0): they are put back at once, so
    /// taking the device down is not mistaken for drift.
    static func liveChanges(from old: DeviceSpec, to new: DeviceSpec, index: Int32) -> [LinkChangeRequest] {
        var changes: [LinkChangeRequest] = []
        if old.up {
            changes += old.routes.filter { route in !new.routes.contains { $0.sameRoute(as: route) } }.map { .deleteRoute($0, index: index) }
        }
        changes += old.addresses.filter { !new.addresses.contains($0) }.map { .deleteAddress($0, index: index) }
        let settings = LinkSettings(up: new.up != old.up ? new.up : nil, mtu: new.mtu != old.mtu ? new.mtu : nil)
        if settings != LinkSettings() { changes.append(.configure(index: index, settings)) }
        changes += new.addresses.filter { !old.addresses.contains($0) }.map { .addAddress($0, index: index, replace: true) }
        if old.up && !new.up {
            changes += new.addresses.filter { $0.family == .ipv6 && old.addresses.contains($0) }.map { .addAddress($0, index: index, replace: true) }
        }
        if new.up {
            let routes = old.up ? new.routes.filter { route in !old.routes.contains { $0.sameRoute(as: route) } } : new.routes
            changes += routes.map { .addRoute($0, index: index, replace: true) }
        }
        return changes
    }

    /// Carries out a plan under the devices lock; returns the events to publish once it is released.
    private func execute(_ plan: ApplyPlan, specs: [DeviceSpec], table: inout DeviceTable) throws(TundError) -> [(String, DeviceEvent.Kind, [(String, String)])] {
        let byName = Dictionary(specs.map { ($0.name!, $0) }, uniquingKeysWith: { first, _ in first })
        var events: [(String, DeviceEvent.Kind, [(String, String)])] = []

        // Old links of devices to re-create go first: their names must be free.
        let replaced = plan.recreate.compactMap { table[$0] }
        for managed in replaced {
            managed.worker?.stop()
            managed.device?.close()
            var emptied = managed
            emptied.worker = nil
            emptied.device = nil
            emptied.index = nil
            table[managed.record.name] = emptied
        }
        try? kernel { () throws(KernelError) in try links.deleteLinks(replaced.compactMap(\.index)) }

        // Until the rows are committed, a failure closes the new devices (opened non-persistent, they
        // vanish with their addresses and routes) and undoes the live changes.
        var opened: [(spec: DeviceSpec, device: any OpenDevice)] = []
        var undo: [LinkChangeRequest] = []
        let made: [String: LinkState]
        let stored: (inserted: [DeviceRecord], updated: [DeviceRecord])
        do throws(TundError) {
            for name in plan.recreate + plan.create {
                let spec = byName[name]!
                let device: any OpenDevice
                do throws(KernelError) {
                    device = try links.open(name: spec.kernelName!, kind: spec.kind, queues: spec.queues, exclusive: true, vnetHeader: spec.offload)
                } catch {
                    throw error.errno == .EBUSY ? TundError.nameInUse(name: spec.kernelName!) : .kernel(Self.naming(name, error))
                }
                opened.append((spec, device))
                do throws(KernelError) { try prepare(device, spec: spec) } catch { throw .kernel(Self.naming(name, error)) }
            }
            // One dump for every new link's index and MAC.
            made = opened.isEmpty ? [:] : try kernel { () throws(KernelError) in try links.links() }.byName()

            // Every netlink change, pipelined: new links configured, live changes to updated ones.
            var changes: [LinkChangeRequest] = []
            var owners: [String] = []
            for (spec, device) in opened {
                guard let link = made[device.name] else { continue }
                let setup = setupChanges(spec, index: link.index, replace: false)
                changes += setup
                owners += Array(repeating: spec.name!, count: setup.count)
            }
            for name in plan.update {
                guard let managed = table[name], let index = managed.index else { continue }
                let wanted = Self.normalized(byName[name]!, like: managed.record.spec)
                if wanted.usesIPv6 && !managed.record.spec.usesIPv6 {
                    try? kernel { () throws(KernelError) in try links.setIPv6(enabled: true, name: managed.record.kernelName) }
                }
                let forward = Self.liveChanges(from: managed.record.spec, to: wanted, index: index)
                changes += forward
                owners += Array(repeating: name, count: forward.count)
                undo += Self.liveChanges(from: wanted, to: managed.record.spec, index: index)
            }
            for (position, result) in links.perform(changes).enumerated() {
                guard let error = result else { continue }
                // Removing what is already gone is fine: the goal is its absence.
                if changes[position].removes && Self.meansAbsent(error) { continue }
                throw .kernel(Self.naming(owners[position], error))
            }
            for (spec, device) in opened where spec.workerMode == .tunnel {
                if let link = made[device.name] { try checkTunnelPath(spec, index: link.index) }
            }

            // The rows, in one transaction.
            let now = Timestamp.now()
            var inserts: [DeviceRecord] = []
            for (spec, device) in opened {
                var record = DeviceRecord(name: spec.name!, spec: spec, createdAt: now, updatedAt: now)
                record.setRoutes(spec.routes.map { DeviceRoute(id: 0, spec: $0) })
                if spec.kind == .tap && spec.mac == nil { record.spec.mac = made[device.name]?.mac }
                inserts.append(record)
            }
            var updates: [DeviceRecord] = []
            for name in plan.update {
                guard let managed = table[name] else { continue }
                var record = managed.record
                let wanted = Self.normalized(byName[name]!, like: record.spec)
                // Routes that stay keep their ids.
                record.setRoutes(wanted.routes.map { route in
                    DeviceRoute(id: record.routes.first { $0.spec.sameRoute(as: route) }?.id ?? 0, spec: route)
                })
                record.spec = wanted
                record.generation += 1
                record.updatedAt = now
                updates.append(record)
            }
            stored = try store.apply(insert: inserts, update: updates, delete: plan.delete + plan.recreate)
        } catch {
            for (_, device) in opened { device.close() }
            _ = links.perform(undo)
            throw error
        }

        // Committed: from here on every step only finishes what the rows already say.
        for (record, (_, device)) in zip(stored.inserted, opened) {
            let name = record.name
            let link = made[record.kernelName]
            let recreated = plan.recreate.contains(name)
            do throws(TundError) {
                try kernel { () throws(KernelError) in try device.setPersistent(true) }
                var managed = ManagedDevice(record: record, device: device, worker: nil, index: link?.index)
                managed.offloads = record.spec.offload ? device.enableOffloads() : []
                managed.lastLinkUp = record.spec.up
                if record.spec.workerMode.attachesWorker {
                    managed.worker = try startWorker(record, device)
                    events.append((name, .workerStarted, [("mode", record.spec.workerMode.rawValue)]))
                } else {
                    device.close()
                    managed.device = nil
                }
                table[name] = managed
            } catch {
                // The row is there: restore and drift repair finish the job.
                table[name] = ManagedDevice(record: record, device: device, worker: nil, index: link?.index, restoreError: error.description)
                logger.error("device stored by apply, not fully started", metadata: deviceMetadata(record).merging(["error": "\(error)"]) { $1 })
            }
            events.append((name, recreated ? .updated : .created, [("generation", "\(record.generation)")] + (recreated ? [("change", "re-created")] : [])))
        }
        for record in stored.updated {
            guard var managed = table[record.name] else { continue }
            let old = managed.record
            do throws(TundError) {
                if try updateWorker(&managed, from: old.spec, to: record) {
                    events.append((record.name, .workerStopped, [("reason", "worker changed")]))
                    if managed.worker != nil { events.append((record.name, .workerStarted, [("mode", record.spec.workerMode.rawValue)])) }
                }
            } catch {
                events.append((record.name, .workerFailed, [("error", error.description)]))
            }
            managed.record = record
            managed.lastLinkUp = record.spec.up
            table[record.name] = managed
            events.append((record.name, .updated, [("change", "apply"), ("generation", "\(record.generation)")]))
        }
        let deleted = plan.delete.compactMap { table[$0] }
        for managed in deleted {
            managed.worker?.stop()
            managed.device?.close()
            table[managed.record.name] = nil
            captureHubs.withLock { $0.removeValue(forKey: managed.record.name) }?.finishAll()
            events.append((managed.record.name, .deleted, []))
        }
        do throws(KernelError) {
            try links.deleteLinks(deleted.compactMap(\.index))
        } catch {
            logger.error("devices forgotten, but their links could not all be removed; they carry tund's alias, so the next start removes them",
                         metadata: ["error": "\(error)"])
        }
        table.version += 1
        return events
    }

    /// A kernel error that says which device it was about.
    static func naming(_ name: String, _ error: KernelError) -> KernelError {
        KernelError(operation: "device \(name): \(error.operation)", errno: error.errno, kernelMessage: error.kernelMessage)
    }
}

