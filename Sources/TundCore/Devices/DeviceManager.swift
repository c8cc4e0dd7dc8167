import Errno
import Logging
import NetAddress
import Synchronization

/// Creates, changes, deletes, restores and repairs devices, keeping the kernel (actual state) and the
/// store (desired state) in step.
///
/// Create orders its steps so that a crash at any point converges on the next start: the device is
/// made non-persistent and configured, then its row is committed, and only then is it made persistent.
/// A crash before the commit closes the descriptors and the kernel removes the half-made device with its
/// addresses and routes; a crash after it leaves a row that restore brings back.
///
/// Ownership: every link tund makes carries the alias `tund:<instance>`, every address and route it adds
/// carries its protocol number. Reconciliation (restore, drift repair) adds what is missing and removes
/// only what carries those marks and is not wanted; it never touches what others made.
///
/// Mutations are serialized by one lock (they take microseconds to milliseconds); reads copy what they
/// need under the lock and ask the kernel outside it.
public final class DeviceManager: Sendable {
    let links: any LinkControl
    let store: any DeviceStore
    let workers: any PacketWorkers
    let logger: Logger
    public let events: EventLog
    let devices = Mutex(DeviceTable())
    /// Per device, outliving worker restarts (drift repair re-creates the worker, not the captures).
    let captureHubs = Mutex<[String: CaptureHub]>([:])
    let captureTimer = CaptureTimer()
    let ready = Atomic<Bool>(false)
    let restoreReport = Mutex(RestoreReport())

    /// The alias of every link this database owns.
    public let ownerAlias: String
    /// Drawn at start: collection tags of an earlier run never match.
    let instanceTag = String(UInt32.random(in: 0...UInt32.max), radix: 16)

    /// Creates beyond this many devices answer `.deviceLimitReached`.
    public let maxDevices: Int
    /// The network namespace whose devices this manager keeps (`links` talks to it); nil for tund's own.
    public let netns: String?

    public init(links: any LinkControl, store: any DeviceStore, workers: any PacketWorkers, logger: Logger,
                events: EventLog = EventLog(), maxDevices: Int = 1024, netns: String? = nil) {
        self.maxDevices = maxDevices
        self.netns = netns
        self.links = links
        self.workers = workers
        self.store = store
        self.logger = logger
        self.events = events
        ownerAlias = "tund:\(store.instanceID)"
    }

    /// True once `restore` has finished; until then mutations answer `.notReady`.
    public var isReady: Bool { ready.load(ordering: .acquiring) }

    // MARK: - Create

    /// Creates a device as `spec` describes: `ip tuntap add` + `ip link set` + `ip addr add` + `ip route add`,
    /// stored, persistent, with its worker running. Nothing is left behind when a step fails.
    ///
    /// With an idempotency key, a retry of the same request returns the device the first one made
    /// (`replayed` true) instead of failing on the taken name.
    public func create(_ spec: DeviceSpec, idempotencyKey: String? = nil) throws(TundError) -> (device: DeviceSnapshot, replayed: Bool) {
        guard isReady else { throw .notReady }
        try spec.validate()
        let fingerprint = Self.fingerprint(spec)
        // The link as configured comes back with a new device, so its answer needs no further query.
        let outcome = try devices.withLock { (devices) throws(TundError) -> (ManagedDevice, Bool, LinkState?) in
            if let idempotencyKey, let claim = try store.claim(key: idempotencyKey) {
                guard claim.fingerprint == fingerprint else {
                    throw .idempotencyKeyReused("Idempotency-Key \(idempotencyKey) was used for a different request")
                }
                guard let made = devices[claim.deviceName] else {
                    throw .idempotencyKeyReused("the device \(claim.deviceName) created with Idempotency-Key \(idempotencyKey) has been deleted since")
                }
                return (made, true, nil)
            }
            if let name = spec.name, devices[name] != nil { throw .deviceExists(name: name) }
            guard devices.count < maxDevices else { throw .deviceLimitReached(limit: maxDevices) }
            if let name = spec.kernelName {
                if try kernel({ () throws(KernelError) in try links.link(named: name) }) != nil { throw .nameInUse(name: name) }
            }
            let opened: any OpenDevice
            do throws(KernelError) {
                opened = try links.open(name: spec.kernelName, kind: spec.kind, queues: spec.queues, exclusive: true, vnetHeader: spec.offload)
            } catch {
                // EBUSY: someone made a link of that name between our check and the ioctl.
                throw error.errno == .EBUSY ? .nameInUse(name: spec.kernelName ?? "") : .kernel(error)
            }
            var persisted = false
            var handedOver = false
            var stored: DeviceRecord?
            do throws(TundError) {
                let now = Timestamp.now()
                let link = try bringUp(opened, spec: spec, replace: false)
                try checkTunnelPath(spec, index: link.index)
                // Without an ifname the device is called what the kernel called the link (it may have picked).
                let name = spec.ifname == nil ? opened.name : spec.name!
                var record = DeviceRecord(name: name, spec: spec, createdAt: now, updatedAt: now)
                record.spec.name = name
                record.setRoutes(spec.routes.map { DeviceRoute(id: 0, spec: $0) })
                if spec.kind == .tap && spec.mac == nil { record.spec.mac = link.mac }
                let claim = idempotencyKey.map { IdempotencyClaim(key: $0, fingerprint: fingerprint, deviceName: name) }
                record = try store.insert(record, claim: claim)
                stored = record
                try kernel { () throws(KernelError) in try opened.setPersistent(true) }
                persisted = true
                let offloads = spec.offload ? opened.enableOffloads() : []
                var managed = ManagedDevice(record: record, device: opened, worker: nil, index: link.index)
                if spec.workerMode.attachesWorker {
                    managed.worker = try startWorker(record, opened)
                } else {
                    // Handed to its owner: the device is persistent and configured; its queue is free for TUNSETIFF.
                    opened.close()
                    managed.device = nil
                    handedOver = true
                }
                managed.lastLinkUp = spec.up
                managed.offloads = offloads
                devices[record.name] = managed
                devices.version += 1
                return (managed, false, link)
            } catch {
                if persisted { try? opened.setPersistent(false) }
                if handedOver, let link = try? links.link(named: opened.name) { try? links.deleteLink(index: link.index) }
                opened.close()
                if let stored { _ = try? store.delete(name: stored.name) }
                throw error
            }
        }
        let (managed, replayed, configured) = outcome
        if !replayed {
            logger.info("device created", metadata: deviceMetadata(managed.record))
            events.publish(.created, device: managed.record.name, [("generation", "\(managed.record.generation)")])
            if managed.worker != nil {
                events.publish(.workerStarted, device: managed.record.name, [("mode", managed.record.spec.workerMode.rawValue)])
            }
        }
        // A fresh create has just installed every route the kernel acknowledged; no need to ask it again.
        let link = configured ?? (try? links.link(named: managed.record.kernelName)) ?? nil
        return (snapshot(managed, link: link, kernelRoutes: replayed ? nil : managed.record.spec.routes), replayed)
    }

    /// Applies `spec` to an open device: owner and group, alias, MTU, MAC, link state, addresses, routes.
    /// `replace` makes address and route additions succeed when they exist already (restore).
    func bringUp(_ device: any OpenDevice, spec: DeviceSpec, replace: Bool) throws(TundError) -> LinkState {
        try kernel { () throws(KernelError) in try prepare(device, spec: spec) }
        guard let link = try kernel({ () throws(KernelError) in try links.link(named: device.name) }) else {
            throw .kernelFailed(KernelError(operation: "RTM_GETLINK \(device.name)", errno: .ENODEV,
                                            kernelMessage: "the device vanished while being configured"))
        }
        try performChanges(setupChanges(spec, index: link.index, replace: replace))
        return try kernel({ () throws(KernelError) in try links.link(index: link.index) }) ?? link
    }

    /// What needs the device's descriptor or its name, before its link is configured: TUNSETOWNER,
    /// TUNSETGROUP, and the link's IPv6 switch.
    func prepare(_ device: any OpenDevice, spec: DeviceSpec) throws(KernelError) {
        if let owner = spec.owner { try device.setOwner(owner) }
        if let group = spec.group { try device.setGroup(group) }
        try links.setIPv6(enabled: spec.usesIPv6, name: device.name)
    }

    /// What makes a link what `spec` describes: its settings with tund's alias, its addresses, and its
    /// routes. The kernel refuses routes out of a link that is down; they wait in the store until it is up.
    func setupChanges(_ spec: DeviceSpec, index: Int32, replace: Bool) -> [LinkChangeRequest] {
        [.configure(index: index, LinkSettings(up: spec.up, mtu: spec.mtu, mac: spec.mac, alias: ownerAlias))]
            + spec.addresses.map { .addAddress($0, index: index, replace: replace) }
            + (spec.up ? spec.routes.map { .addRoute($0, index: index, replace: replace) } : [])
    }

    /// Sends `needed` and then `bestEffort` in one pipelined batch; the first failure among `needed` is
    /// the error. Removing what may already be gone is best effort.
    func performChanges(_ needed: [LinkChangeRequest], bestEffort: [LinkChangeRequest] = []) throws(TundError) {
        guard !needed.isEmpty || !bestEffort.isEmpty else { return }
        let results = links.perform(needed + bestEffort)
        if let failure = results.prefix(needed.count).compactMap({ $0 }).first { throw .kernel(failure) }
    }

    /// A tunnel whose remote the kernel would reach through the tunnel's own device sends its datagrams
    /// into itself, forever. Asked of the kernel (`ip route get REMOTE`) once the device is configured
    /// as it will be, so longest prefix, the local table, the device's connected prefixes and every
    /// other route count: a full tunnel (0.0.0.0/0 through it) is fine while the remote has a more
    /// specific route elsewhere.
    func checkTunnelPath(_ spec: DeviceSpec, index: Int32) throws(TundError) {
        guard spec.workerMode == .tunnel, let tunnel = spec.tunnel, spec.up else { return }
        let remote = tunnel.remote.address
        if try kernel({ () throws(KernelError) in try links.outputInterface(to: remote) }) == index {
            throw .invalidField(field: "worker.remote", reason: "the kernel routes \(remote) through this device itself (ip route get \(remote)): the tunnel's datagrams would loop back into it; route the remote through another interface")
        }
    }

    func startWorker(_ record: DeviceRecord, _ device: any OpenDevice) throws(TundError) -> any RunningWorker {
        let hub = captureHubs.withLock { hubs in
            if let hub = hubs[record.name] { return hub }
            let hub = CaptureHub()
            hubs[record.name] = hub
            return hub
        }
        let name = record.name, logger = logger, events = events
        // Runs on the failing worker's thread, once: it must not stop (join) the worker itself.
        let onFailure: @Sendable (String) -> Void = { reason in
            logger.error("worker stopped", metadata: ["device": "\(name)", "reason": "\(reason)"])
            events.publish(.workerFailed, device: name, [("error", reason)])
        }
        // Runs on the worker's thread at each handshake and when a peer goes stale: one event each.
        let onPeerEvent: @Sendable (WireGuardPeerNotice) -> Void = { notice in
            let endpoint = [("endpoint", notice.endpoint ?? "")]
            switch notice.kind {
            case .handshake: events.publish(.peerHandshake, device: name, [("public_key", notice.publicKey)] + endpoint)
            case .stale(let reason): events.publish(.peerStale, device: name, [("public_key", notice.publicKey), ("reason", reason)])
            }
        }
        return try kernel { () throws(KernelError) in
            try workers.start(WorkerRequest(name: record.name, kind: record.spec.kind, mode: record.spec.workerMode,
                                            tunnel: record.spec.tunnel, wireguard: record.spec.wireguard, descriptors: device.queueDescriptors,
                                            vnetHeader: record.spec.offload, mtu: record.spec.mtu, capture: hub, onFailure: onFailure,
                                            onPeerEvent: onPeerEvent))
        }
    }

    // MARK: - Capture

    public static let captureLimitRange = 1...100_000
    public static let captureTimeoutRange = 1...3600

    /// Starts copying what the device's worker reads into `sink` as a pcap file: at most `limit` packets,
    /// for at most `timeoutSeconds`. `onFinish` runs once when it ends (limit, timeout, device deleted, or
    /// `sink` answering false because the client left).
    public func capture(_ name: String, limit: Int, timeoutSeconds: Int, sink: @escaping @Sendable ([UInt8]) -> Bool,
                        onFinish: @escaping @Sendable () -> Void) throws(TundError) -> CaptureSession {
        guard Self.captureLimitRange.contains(limit) else {
            throw .invalidField(field: "count", reason: "must be from 1 to \(Self.captureLimitRange.upperBound), got \(limit)")
        }
        guard Self.captureTimeoutRange.contains(timeoutSeconds) else {
            throw .invalidField(field: "timeout", reason: "must be from 1 to \(Self.captureTimeoutRange.upperBound) seconds, got \(timeoutSeconds)")
        }
        let managed = try managedDevice(name)
        if !managed.record.spec.workerMode.attachesWorker {
            throw .kernelRejected(KernelError(operation: "capture \(name)", errno: .ENODEV,
                                              kernelMessage: "the device is handed to its owner (worker mode none): tund reads none of its packets"))
        }
        guard managed.worker != nil, let hub = captureHubs.withLock({ $0[name] }) else {
            throw .kernelRejected(KernelError(operation: "capture \(name)", errno: .ENODEV,
                                              kernelMessage: "the device has no running worker"))
        }
        let session = CaptureSession(limit: limit, kind: managed.record.spec.kind, sink: sink, onFinish: onFinish)
        hub.add(session)
        do throws(Errno) {
            try captureTimer.schedule(session, seconds: timeoutSeconds)
        } catch {
            session.finish()
            throw .kernelFailed(KernelError(operation: "starting the capture timer thread", errno: error))
        }
        logger.info("capture started", metadata: ["device": "\(name)", "count": "\(limit)", "timeout": "\(timeoutSeconds)"])
        return session
    }

    /// A stable summary of a create request, to tell a retry from a different request under the same key.
    static func fingerprint(_ spec: DeviceSpec) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a 64
        for byte in "\(spec)".utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        return String(hash, radix: 16)
    }

    // MARK: - Read

    /// Every managed device with its live link state, in creation order.
    public func list() -> [DeviceSnapshot] {
        read { _, _ in () }.map(\.device)
    }

    /// The same, with the collection's tag as it was when the devices were read.
    public func listTagged() -> (devices: [DeviceSnapshot], tag: String) {
        let tag = collectionTag
        return (list(), tag)
    }

    /// Every device with its counters, from one dump of the links (which carries IFLA_STATS64), as
    /// `/metrics` needs them: no per-device kernel query.
    public func listWithStatistics() -> [(device: DeviceSnapshot, statistics: DeviceStatistics)] {
        read { managed, link in
            statistics(StatisticsSource(managed), name: managed.record.name, kernel: link.flatMap { owned($0) ? $0.counters : nil })
        }.map { ($0.device, $0.extra) }
    }

    /// Every device's snapshot, from one dump of each kind for all of them, with `extra` of each (its
    /// counters, or nothing for a list that shows none).
    private func read<Extra>(_ extra: (ManagedDevice, LinkState?) -> Extra) -> [(device: DeviceSnapshot, extra: Extra)] {
        let managed = devices.withLock { Array($0.values) }.sorted { ($0.record.id ?? 0) < ($1.record.id ?? 0) }
        let linksByName = ((try? links.links()) ?? []).byName()
        // One route dump for every device, and none when no device has routes.
        let routesByLink = managed.contains { !$0.record.routes.isEmpty } ? (try? links.ownedRoutesByLink()) ?? [:] : [:]
        let addressesByLink = managed.isEmpty ? [:] : (try? links.addressesByLink()) ?? [:]
        return managed.map { managed in
            let link = linksByName[managed.record.kernelName]
            let kernelRoutes = link.map { routesByLink[$0.index] ?? [] }
            let kernelAddresses = link.map { (addressesByLink[$0.index] ?? []).map(\.prefix) }
            return (snapshot(managed, link: link, kernelRoutes: kernelRoutes, kernelAddresses: kernelAddresses), extra(managed, link))
        }
    }

    /// Whether `name` is one of this manager's devices.
    public func manages(_ name: String) -> Bool { devices.withLock { $0[name] != nil } }

    /// How many devices this manager keeps.
    public var count: Int { devices.withLock { $0.count } }

    /// Bumped by every change to the desired state of any of its devices.
    var version: UInt64 { devices.withLock { $0.version } }

    public func get(_ name: String) throws(TundError) -> DeviceSnapshot {
        let managed = try managedDevice(name)
        return snapshot(managed, link: (try? links.link(named: managed.record.kernelName)) ?? nil)
    }

    /// The worker's counters and the kernel's for one device. The kernel's come from the link tund's
    /// descriptors are attached to, by its ifindex, and only them (RTM_GETSTATS, not a whole RTM_GETLINK):
    /// none when the device is not live or its link is gone.
    public func statistics(_ name: String) throws(TundError) -> DeviceStatistics {
        guard let answer = statisticsIfManaged(name) else { throw .deviceNotFound(name: name) }
        return answer
    }

    /// `statistics(name)`, or nil when this manager has no such device.
    func statisticsIfManaged(_ name: String) -> DeviceStatistics? {
        guard let source = devices.withLock({ $0.statisticsSource(name) }) else { return nil }
        // A device handed to its owner has no descriptors here but is live: its counters are the kernel's.
        let kernel = source.index.flatMap { (try? links.counters(index: $0)) ?? nil }
        return statistics(source, name: name, kernel: kernel)
    }

    private func statistics(_ source: StatisticsSource, name: String, kernel: KernelCounters?) -> DeviceStatistics {
        let worker = source.worker.map { WorkerCounters(mode: source.mode, running: $0.isRunning, queues: $0.queueCounters()) }
            ?? WorkerCounters(mode: source.mode, running: false, queues: [])
        var answer = DeviceStatistics(name: name, worker: worker, kernel: kernel,
                                      driftDetected: source.driftDetected, driftRepaired: source.driftRepaired)
        if source.mode == .wireguard, let running = source.worker {
            answer.peers = running.wireGuardPeers()
            answer.wireguardDrops = running.wireGuardDeviceDrops()
        }
        return answer
    }

    func managedDevice(_ name: String) throws(TundError) -> ManagedDevice {
        guard let managed = devices.withLock({ $0[name] }) else { throw .deviceNotFound(name: name) }
        return managed
    }

    func owned(_ link: LinkState) -> Bool { link.alias == ownerAlias }

    /// The device as the API shows it. `kernelRoutes`: tund's routes out of the link as the kernel holds
    /// them now; nil asks the kernel, unless the link is absent or down (then it holds none of them).
    /// `kernelAddresses`: the link's addresses as the kernel holds them; nil asks the kernel.
    func snapshot(_ managed: ManagedDevice, link: LinkState?, kernelRoutes: [RouteSpec]? = nil,
                  kernelAddresses: [IPPrefix]? = nil) -> DeviceSnapshot {
        let link = link.flatMap { owned($0) ? $0 : nil }
        var active = Set<Int64>()
        if let link, link.up, !managed.record.routes.isEmpty,
           let installed = kernelRoutes ?? (try? links.ownedRoutes(index: link.index)) {
            active = Set(managed.record.routes.filter { route in installed.contains { $0.sameRoute(as: route.spec) } }.map(\.id))
        }
        return DeviceSnapshot(record: managed.record, link: link,
                              workerRunning: managed.worker?.isRunning ?? false, restoreError: managed.restoreError,
                              lastDrift: managed.lastDrift, driftDetected: managed.driftDetected, driftRepaired: managed.driftRepaired,
                              offloads: managed.offloads, activeRouteIDs: active,
                              liveAddresses: link.map { link in kernelAddresses ?? ((try? links.addresses(index: link.index)) ?? []).map(\.prefix) })
    }

    // MARK: - Delete

    /// Stops the worker, removes the link (and with it its addresses and routes) and the row.
    /// Equivalent to `ip link del NAME` plus forgetting the device. `ifMatch`: the generation the caller saw.
    public func delete(_ name: String, ifMatch: Set<Int64>? = nil) throws(TundError) {
        guard isReady else { throw .notReady }
        let record = try devices.withLock { (devices) throws(TundError) -> DeviceRecord in
            guard let managed = devices[name] else { throw .deviceNotFound(name: name) }
            try Self.check(ifMatch, managed.record)
            // The row goes first: if the store refuses (disk full, locked), nothing has changed and the
            // device goes on working. Removing the link first would leave a row whose link is gone, which
            // drift repair would then re-create.
            _ = try store.delete(name: name)
            devices[name] = nil
            devices.version += 1
            managed.worker?.stop()
            if let device = managed.device {
                try? device.setPersistent(false)
                device.close()
            }
            // Still there when another process holds a queue descriptor, or restore never opened it.
            do throws(KernelError) {
                if let link = try links.link(named: managed.record.kernelName), owned(link) { try links.deleteLink(index: link.index) }
            } catch {
                logger.error("device forgotten, but its link could not be removed; it carries tund's alias, so the next start removes it",
                             metadata: deviceMetadata(managed.record).merging(["error": "\(error)"]) { $1 })
            }
            captureHubs.withLock { $0.removeValue(forKey: name) }?.finishAll()
            return managed.record
        }
        logger.info("device deleted", metadata: deviceMetadata(record))
        events.publish(.workerStopped, device: name, [("reason", "device deleted")])
        events.publish(.deleted, device: name)
    }

    /// `ifMatch`: the generations the caller accepts (an `If-Match` list); nil accepts any.
    static func check(_ ifMatch: Set<Int64>?, _ record: DeviceRecord) throws(TundError) {
        if let ifMatch, !ifMatch.contains(record.generation) {
            throw .preconditionFailed(name: record.name, current: record.generation)
        }
    }

    // MARK: - Shutdown

    /// Stops every worker and closes every descriptor. The devices stay: they are persistent, so traffic
    /// and routes survive until the next start re-attaches.
    public func shutdown() {
        ready.store(false, ordering: .releasing)
        let all = devices.withLock { devices in
            defer { devices = DeviceTable() }
            return Array(devices.values)
        }
        for managed in all {
            managed.worker?.stop()
            managed.device?.close()
        }
        for hub in captureHubs.withLock({ hubs in defer { hubs = [:] }; return Array(hubs.values) }) { hub.finishAll() }
        captureTimer.stop()
    }

    func deviceMetadata(_ record: DeviceRecord) -> Logger.Metadata {
        ["device": "\(record.name)", "type": "\(record.spec.kind.rawValue)", "mtu": "\(record.spec.mtu)",
         "queues": "\(record.spec.queues)", "addresses": "\(record.spec.addresses.map(\.description).joined(separator: ","))",
         "routes": "\(record.spec.routes.count)", "generation": "\(record.generation)"]
    }
}

/// The managed devices by name, with an index by ifindex so a kernel notice finds its device without a
/// walk over all of them.
struct DeviceTable {
    private(set) var byName: [String: ManagedDevice] = [:]
    private var nameByIndex: [Int32: String] = [:]
    /// The device of each link name, where the two differ (`ifname`).
    private var nameByKernelName: [String: String] = [:]
    /// What each device's counters come from, kept beside it: reading them copies these few fields,
    /// not the whole ManagedDevice (whose record, spec and routes cost more than the rest of a scrape).
    private var statisticsSources: [String: StatisticsSource] = [:]
    /// Bumped by every change to the desired state of any device: the collection's entity tag.
    var version: UInt64 = 0

    subscript(name: String) -> ManagedDevice? {
        get { byName[name] }
        set {
            if let old = byName[name]?.index, nameByIndex[old] == name { nameByIndex[old] = nil }
            if let old = byName[name]?.record.kernelName, old != name { nameByKernelName[old] = nil }
            byName[name] = newValue
            statisticsSources[name] = newValue.map(StatisticsSource.init)
            if let index = newValue?.index { nameByIndex[index] = name }
            if let kernelName = newValue?.record.kernelName, kernelName != name { nameByKernelName[kernelName] = name }
        }
    }

    var values: Dictionary<String, ManagedDevice>.Values { byName.values }
    var keys: Dictionary<String, ManagedDevice>.Keys { byName.keys }
    var count: Int { byName.count }

    func name(index: Int32) -> String? { nameByIndex[index] }

    /// What a device's counters come from, read in place.
    func statisticsSource(_ name: String) -> StatisticsSource? { statisticsSources[name] }

    /// The device whose link is called `kernelName`: one with an ifname of that name, else one of that
    /// name without an ifname of its own.
    func name(kernelName: String) -> String? {
        if let name = nameByKernelName[kernelName] { return name }
        return byName[kernelName]?.record.kernelName == kernelName ? kernelName : nil
    }
}

/// The few fields of a device its counters come from.
struct StatisticsSource: Sendable {
    let mode: WorkerMode
    let worker: (any RunningWorker)?
    let index: Int32?
    let driftDetected: Int
    let driftRepaired: Int

    init(_ managed: borrowing ManagedDevice) {
        mode = managed.record.spec.workerMode
        worker = managed.worker
        index = managed.index
        driftDetected = managed.driftDetected
        driftRepaired = managed.driftRepaired
    }
}

/// A device under management: its record, and, when it is live, its descriptors and worker. A device
/// handed to its owner (mode none) is live with an index and neither descriptors nor worker.
struct ManagedDevice: Sendable {
    var record: DeviceRecord
    var device: (any OpenDevice)?
    var worker: (any RunningWorker)?
    /// The ifindex of the link the descriptors are attached to.
    var index: Int32?
    var restoreError: String?
    var lastDrift: DriftReport?
    var driftDetected = 0
    var driftRepaired = 0
    /// The link state last announced (link.up / link.down events fire on changes of it).
    var lastLinkUp: Bool?
    /// What TUNSETOFFLOAD granted ("csum", "tso4", ...); empty without offloads.
    var offloads: [String] = []

    init(record: DeviceRecord, device: (any OpenDevice)?, worker: (any RunningWorker)?, index: Int32?, restoreError: String? = nil) {
        self.record = record
        self.device = device
        self.worker = worker
        self.index = index
        self.restoreError = restoreError
    }
}

/// Runs a kernel call, mapping its failure into the domain once.
@inline(__always)
func kernel<T>(_ body: () throws(KernelError) -> T) throws(TundError) -> T {
    do { return try body() } catch { throw TundError.kernel(error) }
}
