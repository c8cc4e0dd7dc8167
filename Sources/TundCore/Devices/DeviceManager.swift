import Logging
import NetAddress
import Synchronization

/// Creates, lists, deletes and restores devices, keeping the kernel (actual state) and the store
/// (desired state) in step.
///
/// Create orders its steps so that a crash at any point converges on the next start: the device is
/// made non-persistent and configured, then its row is committed, and only then is it made persistent.
/// A crash before the commit closes the descriptors and the kernel removes the half-made device with its
/// addresses and routes; a crash after it leaves a row that restore brings back. Every link tund makes
/// carries the alias `tund:<instance>`; restore deletes such a link that has no row, and never touches a
/// link without it.
///
/// Mutations are serialized by one lock (they take microseconds to milliseconds); reads copy what they
/// need under the lock and ask the kernel outside it.
public final class DeviceManager: Sendable {
    private let links: any LinkControl
    private let store: any DeviceStore
    private let logger: Logger
    private let devices = Mutex<[String: ManagedDevice]>([:])
    private let ready = Atomic<Bool>(false)

    /// The alias of every link this database owns.
    public let ownerAlias: String

    public init(links: any LinkControl, store: any DeviceStore, logger: Logger) {
        self.links = links
        self.store = store
        self.logger = logger
        ownerAlias = "tund:\(store.instanceID)"
    }

    /// True once `restore` has finished; until then mutations answer `.notReady`.
    public var isReady: Bool { ready.load(ordering: .acquiring) }

    // MARK: - Create

    /// Creates a device as `spec` describes: `ip tuntap add` + `ip link set` + `ip addr add` + `ip route add`,
    /// stored, persistent, with its worker running. Nothing is left behind when a step fails.
    public func create(_ spec: DeviceSpec) throws(TundError) -> DeviceSnapshot {
        guard isReady else { throw .notReady }
        try spec.validate()
        let managed = try devices.withLock { (devices) throws(TundError) -> ManagedDevice in
            if let name = spec.name {
                if devices[name] != nil { throw .deviceExists(name: name) }
                if try kernel({ () throws(KernelError) in try links.link(named: name) }) != nil { throw .nameInUse(name: name) }
            }
            let opened: any OpenDevice
            do throws(KernelError) {
                opened = try links.open(name: spec.name, kind: spec.kind, queues: spec.queues, exclusive: true)
            } catch {
                // EBUSY: someone made a link of that name between our check and the ioctl.
                throw error.errnoName == "EBUSY" ? .nameInUse(name: spec.name ?? "") : .kernel(error)
            }
            var persisted = false
            var stored: DeviceRecord?
            do throws(TundError) {
                let now = Timestamp.now()
                let link = try bringUp(opened, spec: spec, replace: false)
                var record = DeviceRecord(name: opened.name, spec: spec, createdAt: now, updatedAt: now)
                record.spec.name = opened.name
                if spec.kind == .tap && spec.mac == nil { record.spec.mac = link.mac }
                record = try store.insert(record)
                stored = record
                try kernel { () throws(KernelError) in try opened.setPersistent(true) }
                persisted = true
                let worker = try startWorker(record, opened)
                let managed = ManagedDevice(record: record, device: opened, worker: worker, restoreError: nil)
                devices[record.name] = managed
                return managed
            } catch {
                if persisted { try? opened.setPersistent(false) }
                opened.close()
                if let stored { _ = try? store.delete(name: stored.name) }
                throw error
            }
        }
        logger.info("device created", metadata: deviceMetadata(managed.record))
        return snapshot(managed, link: (try? links.link(named: managed.record.name)) ?? nil)
    }

    /// Applies `spec` to an open device: owner and group, alias, MTU, MAC, link state, addresses, routes.
    /// `replace` makes address and route additions succeed when they exist already (restore).
    private func bringUp(_ device: any OpenDevice, spec: DeviceSpec, replace: Bool) throws(TundError) -> LinkState {
        try kernel { () throws(KernelError) in
            if let owner = spec.owner { try device.setOwner(owner) }
            if let group = spec.group { try device.setGroup(group) }
        }
        guard let link = try kernel({ () throws(KernelError) in try links.link(named: device.name) }) else {
            throw .kernelFailed(KernelError(operation: "RTM_GETLINK \(device.name)", errno: 19, errnoName: "ENODEV",
                                            kernelMessage: "the device vanished while being configured"))
        }
        try kernel { () throws(KernelError) in
            try links.configure(index: link.index, LinkSettings(up: spec.up, mtu: spec.mtu, mac: spec.mac, alias: ownerAlias))
            for prefix in spec.addresses { try links.addAddress(prefix, index: link.index, replace: replace) }
            for route in spec.routes { try links.addRoute(route, index: link.index, replace: replace) }
        }
        return try kernel({ () throws(KernelError) in try links.link(index: link.index) }) ?? link
    }

    private func startWorker(_ record: DeviceRecord, _ device: any OpenDevice) throws(TundError) -> PacketWorker {
        try kernel { () throws(KernelError) in
            try PacketWorker(mode: record.spec.workerMode, kind: record.spec.kind, descriptors: device.queueDescriptors)
        }
    }

    // MARK: - Read

    /// Every managed device with its live link state, in creation order.
    public func list() -> [DeviceSnapshot] {
        let managed = devices.withLock { Array($0.values) }.sorted { ($0.record.id ?? 0) < ($1.record.id ?? 0) }
        let linksByName = Dictionary((try? links.links())?.map { ($0.name, $0) } ?? [], uniquingKeysWith: { first, _ in first })
        return managed.map { snapshot($0, link: linksByName[$0.record.name]) }
    }

    public func get(_ name: String) throws(TundError) -> DeviceSnapshot {
        let managed = try managedDevice(name)
        return snapshot(managed, link: (try? links.link(named: name)) ?? nil)
    }

    /// The worker's counters and the kernel's IFLA_STATS64 for one device.
    public func statistics(_ name: String) throws(TundError) -> DeviceStatistics {
        let managed = try managedDevice(name)
        let link = (try? links.link(named: name)) ?? nil
        let worker = managed.worker?.counters()
            ?? WorkerCounters(mode: managed.record.spec.workerMode, running: false, queues: [])
        return DeviceStatistics(name: name, worker: worker, kernel: link.flatMap { owned($0) ? $0.counters : nil })
    }

    private func managedDevice(_ name: String) throws(TundError) -> ManagedDevice {
        guard let managed = devices.withLock({ $0[name] }) else { throw .deviceNotFound(name: name) }
        return managed
    }

    private func owned(_ link: LinkState) -> Bool { link.alias == ownerAlias }

    private func snapshot(_ managed: ManagedDevice, link: LinkState?) -> DeviceSnapshot {
        let live = link.flatMap { owned($0) ? $0 : nil }
        return DeviceSnapshot(record: managed.record, link: live, workerRunning: managed.worker?.isRunning ?? false,
                              restoreError: managed.restoreError)
    }

    // MARK: - Delete

    /// Stops the worker, removes the link (and with it its addresses and routes) and the row.
    /// Equivalent to `ip link del NAME` plus forgetting the device.
    public func delete(_ name: String) throws(TundError) {
        guard isReady else { throw .notReady }
        let record = try devices.withLock { (devices) throws(TundError) -> DeviceRecord in
            guard let managed = devices[name] else { throw .deviceNotFound(name: name) }
            managed.worker?.stop()
            if let device = managed.device {
                try? device.setPersistent(false)
                device.close()
            }
            // Still there when another process holds a queue descriptor, or restore never opened it.
            if let link = try kernel({ () throws(KernelError) in try links.link(named: name) }), owned(link) {
                try kernel { () throws(KernelError) in try links.deleteLink(index: link.index) }
            }
            _ = try store.delete(name: name)
            devices[name] = nil
            return managed.record
        }
        logger.info("device deleted", metadata: deviceMetadata(record))
    }

    // MARK: - Restore and shutdown

    /// Brings the kernel in line with the store: re-attaches to each stored device that still exists (the
    /// daemon was killed or restarted), re-creates each one that is gone (reboot, deleted behind tund's
    /// back), re-applies MTU, link state, addresses and routes, and restarts the workers; then deletes
    /// links that carry this database's alias but have no row (a create cut short). A device that cannot be
    /// restored is kept with its error and the others go on. Marks the manager ready at the end.
    @discardableResult
    public func restore() throws(TundError) -> RestoreReport {
        var report = RestoreReport()
        let records = try store.allDevices()
        let current = try kernel { () throws(KernelError) in try links.links() }
        let storedNames = Set(records.map(\.name))
        for link in current where owned(link) && !storedNames.contains(link.name) {
            do {
                try links.deleteLink(index: link.index)
                report.orphansRemoved.append(link.name)
                logger.warning("removed orphan device left by an interrupted create", metadata: ["device": "\(link.name)"])
            } catch {
                logger.error("could not remove orphan device", metadata: ["device": "\(link.name)", "error": "\(error)"])
            }
        }
        let byName = Dictionary(current.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for record in records {
            let managed = restoreOne(record, existing: byName[record.name])
            if let error = managed.restoreError {
                report.failed[record.name] = error
                logger.error("device not restored", metadata: deviceMetadata(record).merging(["error": "\(error)"]) { $1 })
            } else {
                if byName[record.name] == nil { report.recreated.append(record.name) } else { report.reattached.append(record.name) }
                logger.info("device restored", metadata: deviceMetadata(record).merging(["how": byName[record.name] == nil ? "re-created" : "re-attached"]) { $1 })
            }
            devices.withLock { $0[record.name] = managed }
        }
        ready.store(true, ordering: .releasing)
        return report
    }

    private func restoreOne(_ record: DeviceRecord, existing: LinkState?) -> ManagedDevice {
        if let existing, !owned(existing) {
            return ManagedDevice(record: record, device: nil, worker: nil,
                                 restoreError: TundError.nameInUse(name: record.name).description)
        }
        let opened: any OpenDevice
        do {
            opened = try links.open(name: record.name, kind: record.spec.kind, queues: record.spec.queues, exclusive: false)
        } catch {
            return ManagedDevice(record: record, device: nil, worker: nil, restoreError: TundError.kernel(error).description)
        }
        do throws(TundError) {
            _ = try bringUp(opened, spec: record.spec, replace: true)
            try kernel { () throws(KernelError) in try opened.setPersistent(true) }
            let worker = try startWorker(record, opened)
            return ManagedDevice(record: record, device: opened, worker: worker, restoreError: nil)
        } catch {
            opened.close()
            return ManagedDevice(record: record, device: nil, worker: nil, restoreError: error.description)
        }
    }

    /// Stops every worker and closes every descriptor. The devices stay: they are persistent, so traffic
    /// and routes survive until the next start re-attaches.
    public func shutdown() {
        ready.store(false, ordering: .releasing)
        let all = devices.withLock { devices in
            defer { devices = [:] }
            return Array(devices.values)
        }
        for managed in all {
            managed.worker?.stop()
            managed.device?.close()
        }
    }

    private func deviceMetadata(_ record: DeviceRecord) -> Logger.Metadata {
        ["device": "\(record.name)", "type": "\(record.spec.kind.rawValue)", "mtu": "\(record.spec.mtu)",
         "queues": "\(record.spec.queues)", "addresses": "\(record.spec.addresses.map(\.description).joined(separator: ","))",
         "routes": "\(record.spec.routes.count)"]
    }
}

/// What one restore did, by device name.
public struct RestoreReport: Equatable, Sendable {
    public var reattached: [String] = []
    public var recreated: [String] = []
    public var orphansRemoved: [String] = []
    public var failed: [String: String] = [:]
}

/// A device under management: its record, and, when it is live, its descriptors and worker.
struct ManagedDevice: Sendable {
    let record: DeviceRecord
    let device: (any OpenDevice)?
    let worker: PacketWorker?
    let restoreError: String?
}

/// Runs a kernel call, mapping its failure into the domain once.
@inline(__always)
func kernel<T>(_ body: () throws(KernelError) -> T) throws(TundError) -> T {
    do { return try body() } catch { throw TundError.kernel(error) }
}
