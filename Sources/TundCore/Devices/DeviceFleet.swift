import BackgroundThread
import Logging
import NetAddress
import Synchronization

/// Every device tund keeps, in whatever network namespace it lives: one `DeviceManager` per namespace,
/// each with the kernel ports of its namespace, so restore, drift repair and the create/apply steps run
/// unchanged inside any of them. The API talks to the fleet; the fleet finds a device's manager by name
/// (names are unique across namespaces: the store says so).
///
/// A namespace is opened when a device first names it (or at restore) and held while it has devices.
/// When its file disappears (`ip netns del`, the container exited), its devices stay stored but
/// "stranded": shown with `state.present: false` and reason `namespace_missing`, deletable, never
/// re-created elsewhere; tund lets go of the namespace so the kernel can free it. A restart that finds the
/// namespace again restores them there.
public final class DeviceFleet: Sendable {
    /// tund's own namespace.
    public let home: DeviceManager
    private let opener: (any NamespaceOpener)?
    private struct Member: Sendable {
        let manager: DeviceManager
        let watcher: DriftWatcher
        let kernel: NamespaceKernel
    }
    private struct State {
        /// By `DeviceSpec.namespaceKey` of the `netns` devices give.
        var members: [String: Member] = [:]
        /// Devices whose namespace is gone, by name.
        var stranded: [String: DeviceRecord] = [:]
        /// Bumped when a namespace comes or goes and when a stranded device goes: part of the collection tag.
        var generation: UInt64 = 0
    }
    private let state = Mutex(State())
    /// Opening and closing namespaces, one at a time (a restore runs inside).
    private let membership = Mutex(())
    private let presence = Mutex<BackgroundThread?>(nil)
    /// How often the namespaces' files are looked at.
    static let presenceCheckMilliseconds: Int32 = 500

    public var events: EventLog { home.events }
    /// Ready once every namespace's devices are restored, not only tund's own.
    public var isReady: Bool { restored.load(ordering: .acquiring) && home.isReady }
    private let restored = Atomic<Bool>(false)

    /// `opener`: nil where devices in other namespaces cannot be made (tests of the home namespace).
    public init(home: DeviceManager, opener: (any NamespaceOpener)?) {
        self.home = home
        self.opener = opener
        // A fleet over a manager restored on its own (tests of the home namespace) is ready with it.
        restored.store(home.isReady, ordering: .releasing)
    }

    // MARK: - Restore and shutdown

    /// Restores tund's own namespace, then every other namespace a stored device names; devices of a
    /// namespace that is gone are stranded (and announced), not made anywhere else.
    @discardableResult
    public func restore() throws(TundError) -> RestoreReport {
        let stored = try home.store.allDevices()
        var report = try home.restore(from: stored)
        var byNamespace: [String: [DeviceRecord]] = [:]
        for record in stored {
            if let key = DeviceSpec.namespaceKey(record.spec.netns) { byNamespace[key, default: []].append(record) }
        }
        for (_, records) in byNamespace.sorted(by: { $0.key < $1.key }) {
            let netns = records[0].spec.netns!  // opened as a device names it
            do throws(TundError) {
                let restored = try membership.withLock { _ throws(TundError) in try member(netns, creating: true, stored: stored)!.manager.lastRestore }
                report.reattached += restored.reattached
                report.recreated += restored.recreated
                report.orphansRemoved += restored.orphansRemoved
                report.failed.merge(restored.failed) { $1 }
            } catch {
                strand(records, netns: netns, reason: error.description)
                for record in records { report.failed[record.name] = "namespace_missing: \(error.description)" }
            }
        }
        lastReport.withLock { $0 = report }
        startPresenceChecks()
        restored.store(true, ordering: .releasing)
        return report
    }

    /// Ends every worker and closes every descriptor; the devices stay in the kernel.
    public func shutdown() {
        presence.withLock { thread in defer { thread = nil }; return thread }?.stop()
        let members = state.withLock { Array($0.members.values) }
        for member in members {
            member.watcher.stop()
            member.manager.shutdown()
        }
        home.shutdown()
    }

    // MARK: - Reads

    /// Every device of every namespace (the stranded ones too), in creation order; no counters read.
    public func list() -> [DeviceSnapshot] {
        let (members, stranded) = state.withLock { (Array($0.members.values), Array($0.stranded.values)) }
        var all = home.list()
        for member in members { all += member.manager.list() }
        all += stranded.map(Self.strandedSnapshot)
        return all.sorted { ($0.record.id ?? 0) < ($1.record.id ?? 0) }
    }

    public func listTagged() -> (devices: [DeviceSnapshot], tag: String) {
        let tag = collectionTag
        return (list(), tag)
    }

    public func listWithStatistics() -> [(device: DeviceSnapshot, statistics: DeviceStatistics)] {
        let (members, stranded) = state.withLock { (Array($0.members.values), Array($0.stranded.values)) }
        var all = home.listWithStatistics()
        for member in members { all += member.manager.listWithStatistics() }
        all += stranded.map { (Self.strandedSnapshot($0), Self.strandedStatistics($0)) }
        return all.sorted { ($0.device.record.id ?? 0) < ($1.device.record.id ?? 0) }
    }

    public func get(_ name: String) throws(TundError) -> DeviceSnapshot {
        if let record = strandedRecord(name) { return Self.strandedSnapshot(record) }
        return try manager(of: name).get(name)
    }

    public func statistics(_ name: String) throws(TundError) -> DeviceStatistics {
        // Home first, in one lookup: a device there is not stranded (names are unique across namespaces),
        // and this is the call a monitor makes in a loop.
        if let statistics = home.statisticsIfManaged(name) { return statistics }
        if let record = strandedRecord(name) { return Self.strandedStatistics(record) }
        return try manager(of: name).statistics(name)
    }

    /// What the last `restore` did, in every namespace.
    public var lastRestore: RestoreReport { lastReport.withLock { $0 } ?? home.lastRestore }
    private let lastReport = Mutex<RestoreReport?>(nil)

    /// The entity tag of the whole set, across namespaces. With every device at home it is the home
    /// manager's own.
    public var collectionTag: String {
        let (members, generation, strandedCount) = state.withLock { ($0.members.values.map(\.manager), $0.generation, $0.stranded.count) }
        if members.isEmpty && generation == 0 && strandedCount == 0 { return home.collectionTag }
        let versions = members.reduce(home.version) { $0 + $1.version }
        return "\"set-\(home.instanceTag)-\(generation)-\(versions)\""
    }

    // MARK: - Changes

    public func create(_ spec: DeviceSpec, idempotencyKey: String? = nil) throws(TundError) -> (device: DeviceSnapshot, replayed: Bool) {
        guard let netns = spec.netns else { return try home.create(spec, idempotencyKey: idempotencyKey) }
        guard isReady else { throw .notReady }
        try spec.validate()
        if let name = spec.name, strandedRecord(name) != nil { throw .deviceExists(name: name) }
        guard totalCount < home.maxDevices else { throw .deviceLimitReached(limit: home.maxDevices) }
        let manager = try membership.withLock { _ throws(TundError) in try member(netns, creating: true)!.manager }
        return try manager.create(spec, idempotencyKey: idempotencyKey)
    }

    public func update(_ name: String, _ patch: DevicePatch, ifMatch: Set<Int64>? = nil) throws(TundError) -> DeviceSnapshot {
        try changeable(name).update(name, patch, ifMatch: ifMatch)
    }

    public func addAddress(_ name: String, _ prefix: IPPrefix, ifMatch: Set<Int64>? = nil) throws(TundError) -> DeviceSnapshot {
        try changeable(name).addAddress(name, prefix, ifMatch: ifMatch)
    }

    public func deleteAddress(_ name: String, _ address: String, ifMatch: Set<Int64>? = nil) throws(TundError) -> DeviceSnapshot {
        try changeable(name).deleteAddress(name, address, ifMatch: ifMatch)
    }

    public func addRoute(_ name: String, _ route: RouteSpec, ifMatch: Set<Int64>? = nil) throws(TundError) -> DeviceSnapshot {
        try changeable(name).addRoute(name, route, ifMatch: ifMatch)
    }

    public func deleteRoute(_ name: String, id: Int64, ifMatch: Set<Int64>? = nil) throws(TundError) -> DeviceSnapshot {
        try changeable(name).deleteRoute(name, id: id, ifMatch: ifMatch)
    }

    public func putPeer(_ name: String, _ peer: WireGuardPeerSpec, creating: Bool, ifMatch: Set<Int64>? = nil) throws(TundError) -> DeviceSnapshot {
        try changeable(name).putPeer(name, peer, creating: creating, ifMatch: ifMatch)
    }

    public func deletePeer(_ name: String, publicKey: [UInt8], ifMatch: Set<Int64>? = nil) throws(TundError) -> DeviceSnapshot {
        try changeable(name).deletePeer(name, publicKey: publicKey, ifMatch: ifMatch)
    }

    public func capture(_ name: String, limit: Int, timeoutSeconds: Int, sink: @escaping @Sendable ([UInt8]) -> Bool,
                        onFinish: @escaping @Sendable () -> Void) throws(TundError) -> CaptureSession {
        try changeable(name).capture(name, limit: limit, timeoutSeconds: timeoutSeconds, sink: sink, onFinish: onFinish)
    }

    /// A stranded device loses only its row: its link went with its namespace.
    public func delete(_ name: String, ifMatch: Set<Int64>? = nil) throws(TundError) {
        guard let record = strandedRecord(name) else { return try manager(of: name).delete(name, ifMatch: ifMatch) }
        guard isReady else { throw .notReady }
        if let ifMatch, !ifMatch.contains(record.generation) { throw .preconditionFailed(name: name, current: record.generation) }
        _ = try home.store.delete(name: name)
        state.withLock { state in
            state.stranded[name] = nil
            state.generation += 1
        }
        events.publish(.deleted, device: name)
        home.logger.info("device forgotten; its namespace was gone", metadata: ["device": "\(name)", "netns": "\(record.spec.netns ?? "")"])
    }

    /// `PUT /devices` across namespaces: the set is validated as a whole, each namespace's part is planned
    /// (a dry run in each) before any is applied, then applied namespace by namespace. A failure while
    /// applying one namespace's part leaves the parts applied before it in place (each part is atomic).
    public func apply(_ specs: [DeviceSpec], dryRun: Bool, allowRecreate: Bool, ifMatch: Set<String>? = nil) throws(TundError) -> (plan: ApplyPlan, tag: String) {
        let (members, stranded) = state.withLock { ($0.members, $0.stranded) }
        if members.isEmpty && stranded.isEmpty && specs.allSatisfy({ $0.netns == nil }) {
            return try home.apply(specs, dryRun: dryRun, allowRecreate: allowRecreate, ifMatch: ifMatch)
        }
        guard isReady else { throw .notReady }
        try DeviceManager.validateSet(specs)
        let current = collectionTag
        if let ifMatch, !ifMatch.contains(current) { throw .collectionChanged(current: current) }
        var parts: [String?: [(position: Int, spec: DeviceSpec)]] = [nil: []]
        for netns in members.keys { parts[netns] = [] }
        for (position, spec) in specs.enumerated() {
            let name = spec.name!
            if let record = stranded[name] { throw .namespaceMissing(name: name, netns: record.spec.netns ?? "") }
            if let holder = try? manager(of: name), DeviceSpec.namespaceKey(holder.netns) != DeviceSpec.namespaceKey(spec.netns) {
                throw .notLiveChangeable(field: "devices[\(position)].netns",
                                         reason: "device \(name) lives in \(holder.netns ?? "tund's own namespace"); delete it and create it in the other")
            }
            parts[DeviceSpec.namespaceKey(spec.netns), default: []].append((position, spec))
        }
        var plan = ApplyPlan()
        let declared = Set(specs.compactMap(\.name))
        plan.delete = stranded.keys.filter { !declared.contains($0) }.sorted()
        // Every part planned first: a refusal in any of them changes nothing anywhere.
        var managers: [(DeviceManager, [(position: Int, spec: DeviceSpec)])] = []
        for (netns, part) in parts.sorted(by: { ($0.key ?? "") < ($1.key ?? "") }) {
            let manager: DeviceManager?
            // A namespace is opened as the devices name it (the part's key is only for telling them apart).
            let netns = part.first?.spec.netns ?? netns
            if let netns {
                manager = try membership.withLock { _ throws(TundError) in try member(netns, creating: !dryRun)?.manager }
            } else {
                manager = home
            }
            guard let manager else {
                // A dry run opens no namespace it did not hold: the part is all new devices.
                try probe(netns!)
                plan.create += part.map { $0.spec.name! }
                continue
            }
            let planned = try manager.apply(part.map(\.spec), dryRun: true, allowRecreate: allowRecreate, positions: part.map(\.position)).plan
            managers.append((manager, part))
            if dryRun { plan.merge(planned) }
        }
        if !dryRun {
            for (manager, part) in managers {
                plan.merge(try manager.apply(part.map(\.spec), dryRun: false, allowRecreate: allowRecreate, positions: part.map(\.position)).plan)
            }
            for name in plan.delete where stranded[name] != nil { try delete(name) }
        }
        return (plan, collectionTag)
    }

    // MARK: - Namespaces

    private var totalCount: Int {
        let (members, stranded) = state.withLock { ($0.members.values.map(\.manager), $0.stranded.count) }
        return members.reduce(home.count + stranded) { $0 + $1.count }
    }

    private func strandedRecord(_ name: String) -> DeviceRecord? { state.withLock { $0.stranded[name] } }

    private func manager(of name: String) throws(TundError) -> DeviceManager {
        if home.manages(name) { return home }
        let members = state.withLock { Array($0.members.values) }
        guard let member = members.first(where: { $0.manager.manages(name) }) else { throw .deviceNotFound(name: name) }
        return member.manager
    }

    private func changeable(_ name: String) throws(TundError) -> DeviceManager {
        if let record = strandedRecord(name) { throw .namespaceMissing(name: name, netns: record.spec.netns ?? "") }
        return try manager(of: name)
    }

    /// Throws when `netns` names no namespace that could be used.
    private func probe(_ netns: String) throws(TundError) {
        guard let opener else { throw .namespaceNotFound(netns: netns, reason: "this tund manages only its own namespace") }
        do { try opener.check(netns) } catch { throw .namespaceNotFound(netns: netns, reason: error.description) }
    }

    /// The namespace's member, opened and restored when `creating` and not held yet. Call under `membership`.
    /// `stored`: the store's rows when the caller has read them already (startup), so a namespace opened
    /// then does not read them again.
    @discardableResult
    private func member(_ netns: String, creating: Bool, stored: [DeviceRecord]? = nil) throws(TundError) -> Member? {
        let key = DeviceSpec.namespaceKey(netns)!
        if let member = state.withLock({ $0.members[key] }) { return member }
        guard creating else { return nil }
        guard let opener else { throw .namespaceNotFound(netns: netns, reason: "this tund manages only its own namespace") }
        let kernel: NamespaceKernel
        do { kernel = try opener.open(netns) } catch { throw .namespaceNotFound(netns: netns, reason: error.description) }
        let manager = DeviceManager(links: kernel.links, store: home.store, workers: home.workers, logger: home.logger,
                                    events: home.events, maxDevices: home.maxDevices, netns: netns)
        if let stored { try manager.restore(from: stored) } else { try manager.restore() }
        let watcher = DriftWatcher(manager: manager, notices: kernel.notices)
        do throws(KernelError) { try watcher.start() } catch {
            manager.shutdown()
            throw .kernelFailed(error)
        }
        let member = Member(manager: manager, watcher: watcher, kernel: kernel)
        state.withLock { state in
            state.members[key] = member
            state.generation += 1
        }
        home.logger.info("network namespace opened", metadata: ["netns": "\(netns)", "devices": "\(manager.count)"])
        return member
    }

    private func strand(_ records: [DeviceRecord], netns: String, reason: String) {
        state.withLock { state in
            for record in records { state.stranded[record.name] = record }
            state.generation += 1
        }
        for record in records {
            home.logger.warning("device's network namespace is gone", metadata: ["device": "\(record.name)", "netns": "\(netns)", "reason": "\(reason)"])
            events.publish(.namespaceMissing, device: record.name, [("netns", netns)])
        }
    }

    private func startPresenceChecks() {
        guard opener != nil else { return }
        let thread = try? BackgroundThread(name: "tund:netns") { [self] thread in
            while !thread.isStopping {
                _ = thread.waitFor([], timeoutMilliseconds: Self.presenceCheckMilliseconds)
                thread.wake.drain()
                if !thread.isStopping { dropVanishedNamespaces() }
            }
        }
        presence.withLock { $0 = thread }
    }

    /// Strands the devices of every namespace whose file is gone, and lets go of the namespace.
    func dropVanishedNamespaces() {
        membership.withLock { _ in
            let gone = state.withLock { state in state.members.filter { !$0.value.kernel.isPresent() } }
            for (netns, member) in gone {
                member.watcher.stop()
                let records = member.manager.list().map(\.record)
                member.manager.shutdown()
                state.withLock { state in _ = state.members.removeValue(forKey: netns) }
                strand(records, netns: member.manager.netns ?? netns, reason: "its file is gone")  // as devices named it
            }
        }
    }

    private static func strandedSnapshot(_ record: DeviceRecord) -> DeviceSnapshot {
        var snapshot = DeviceSnapshot(record: record, link: nil, workerRunning: false, restoreError: nil, lastDrift: nil,
                                      driftDetected: 0, driftRepaired: 0, offloads: [])
        snapshot.absentReason = "namespace_missing"
        return snapshot
    }

    private static func strandedStatistics(_ record: DeviceRecord) -> DeviceStatistics {
        DeviceStatistics(name: record.name, worker: WorkerCounters(mode: record.spec.workerMode, running: false, queues: []),
                         kernel: nil, driftDetected: 0, driftRepaired: 0)
    }
}

extension ApplyPlan {
    mutating func merge(_ other: ApplyPlan) {
        create += other.create
        update += other.update
        recreate += other.recreate
        delete += other.delete
        unchanged += other.unchanged
    }
}
