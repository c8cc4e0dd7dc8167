import Errno
import NetAddress
import Synchronization

/// Restore and drift repair: making the kernel match the store, adding what is missing and removing only
/// what tund marked as its own.
extension DeviceManager {
    // MARK: - Restore

    /// Brings the kernel in line with the store: re-attaches to each stored device that still exists (the
    /// daemon was killed or restarted), re-creates each one that is gone (reboot, deleted behind tund's
    /// back), converges MTU, link state, MAC, addresses and routes, and restarts the workers; then deletes
    /// links that carry this database's alias but have no row (a create cut short). A device that cannot be
    /// restored is kept with its error and the others go on. Marks the manager ready at the end.
    @discardableResult
    public func restore() throws(TundError) -> RestoreReport {
        try restore(from: try store.allDevices())
    }

    /// `restore()` from rows already read: the store holds the devices of every namespace, and a caller
    /// restoring several namespaces at startup reads it once; this manager takes its own.
    @discardableResult
    public func restore(from stored: [DeviceRecord]) throws(TundError) -> RestoreReport {
        var report = RestoreReport()
        let key = DeviceSpec.namespaceKey(netns)
        let records = stored.filter { DeviceSpec.namespaceKey($0.spec.netns) == key }
        // One dump of each kind for the whole pass: the cost of restore grows with the devices, not with
        // their square.
        let current = try kernel { () throws(KernelError) in try links.links() }
        let view = KernelView(links: nil, addresses: try kernel { () throws(KernelError) in try links.addressesByLink() },
                              routes: try kernel { () throws(KernelError) in try links.ownedRoutesByLink() })
        let storedNames = Set(records.map(\.kernelName))
        for link in current where owned(link) && !storedNames.contains(link.name) {
            do {
                try links.deleteLink(index: link.index)
                report.orphansRemoved.append(link.name)
                logger.warning("removed orphan device left by an interrupted create", metadata: ["device": "\(link.name)"])
            } catch {
                logger.error("could not remove orphan device", metadata: ["device": "\(link.name)", "error": "\(error)"])
            }
        }
        let byName = current.byName()
        for record in records {
            let managed = attach(record, existing: byName[record.kernelName], view: view)
            if let error = managed.restoreError {
                report.failed[record.name] = error
                logger.error("device not restored", metadata: deviceMetadata(record).merging(["error": "\(error)"]) { $1 })
                events.publish(.workerFailed, device: record.name, [("error", error)])
            } else {
                let how = byName[record.kernelName] == nil ? "re-created" : "re-attached"
                if byName[record.kernelName] == nil { report.recreated.append(record.name) } else { report.reattached.append(record.name) }
                logger.info("device restored", metadata: deviceMetadata(record).merging(["how": "\(how)"]) { $1 })
                if managed.worker != nil {
                    events.publish(.workerStarted, device: record.name, [("mode", record.spec.workerMode.rawValue)])
                }
            }
            devices.withLock { $0[record.name] = managed }
        }
        restoreReport.withLock { $0 = report }
        ready.store(true, ordering: .releasing)
        return report
    }

    /// What the last `restore` did.
    public var lastRestore: RestoreReport { restoreReport.withLock { $0 } }

    /// Opens (attaching or creating) the stored device, converges it and starts its worker. `view`: the
    /// addresses and routes of every link, read once for a pass over many devices; nil reads this one's.
    ///
    /// A device handed to its owner (mode none) that exists is converged over netlink only: attaching to
    /// it would take a queue its owner may hold, or be refused (EBUSY) while the owner holds it.
    func attach(_ record: DeviceRecord, existing: LinkState?, view: KernelView? = nil) -> ManagedDevice {
        if let existing, !owned(existing) {
            return ManagedDevice(record: record, device: nil, worker: nil, index: nil,
                                 restoreError: TundError.nameInUse(name: record.kernelName).description)
        }
        if let existing, !record.spec.workerMode.attachesWorker {
            do throws(TundError) {
                // No descriptor to set the owner with: a device that exists keeps the owner it was made with.
                try kernel { () throws(KernelError) in try links.setIPv6(enabled: record.spec.usesIPv6, name: record.kernelName) }
                try repair(try inspect(record, link: existing, view: view))
                var managed = ManagedDevice(record: record, device: nil, worker: nil, index: existing.index)
                managed.lastLinkUp = record.spec.up
                return managed
            } catch {
                return ManagedDevice(record: record, device: nil, worker: nil, index: nil, restoreError: error.description)
            }
        }
        let opened: any OpenDevice
        do {
            opened = try links.open(name: record.kernelName, kind: record.spec.kind, queues: record.spec.queues, exclusive: false,
                                    vnetHeader: record.spec.offload)
        } catch {
            return ManagedDevice(record: record, device: nil, worker: nil, index: nil, restoreError: TundError.kernel(error).description)
        }
        do throws(TundError) {
            try kernel { () throws(KernelError) in try prepare(opened, spec: record.spec) }
            let link: LinkState
            if let existing {
                link = existing
            } else {
                guard let made = try kernel({ () throws(KernelError) in try links.link(named: record.kernelName) }) else {
                    throw .kernelFailed(KernelError(operation: "RTM_GETLINK \(record.kernelName)", errno: .ENODEV))
                }
                link = made
            }
            // A link just made has none of tund's addresses or routes: nothing to read back.
            try repair(try inspect(record, link: link, view: existing == nil ? KernelView(links: nil, addresses: [:], routes: [:]) : view))
            try kernel { () throws(KernelError) in try opened.setPersistent(true) }
            let offloads = record.spec.offload ? opened.enableOffloads() : []
            var worker: (any RunningWorker)?
            var device: (any OpenDevice)? = opened
            if record.spec.workerMode.attachesWorker {
                worker = try startWorker(record, opened)
            } else {
                opened.close()
                device = nil
            }
            var managed = ManagedDevice(record: record, device: device, worker: worker, index: link.index)
            managed.lastLinkUp = record.spec.up
            managed.offloads = offloads
            return managed
        } catch {
            opened.close()
            return ManagedDevice(record: record, device: nil, worker: nil, index: nil, restoreError: error.description)
        }
    }

    /// What differs between one present link and its record, and what would put it back. Reads only.
    /// Addresses and routes that carry tund's marks but are not stored count as differences; unmarked ones
    /// (someone else's) are not looked at.
    /// `aspects`: what to look at besides the link itself; a notice about a link need not read its routes.
    func inspect(_ record: DeviceRecord, link: LinkState, view: KernelView? = nil, aspects: DriftAspects = .all) throws(TundError) -> DeviceDrift {
        let spec = record.spec
        var drift = DeviceDrift(index: link.index)
        if link.alias != ownerAlias { drift.settings.alias = ownerAlias }
        if link.mtu != spec.mtu {
            drift.findings.append("mtu \(link.mtu), stored \(spec.mtu)")
            drift.settings.mtu = spec.mtu
        }
        if link.up != spec.up {
            drift.findings.append("link \(link.up ? "up" : "down"), stored \(spec.up ? "up" : "down")")
            drift.settings.up = spec.up
        }
        if let mac = spec.mac, link.mac != mac {
            drift.findings.append("mac \(link.mac?.description ?? "none"), stored \(mac)")
            drift.settings.mac = mac
        }
        if aspects.contains(.addresses) {
            let present: [(prefix: IPPrefix, owned: Bool)]
            if let addresses = view?.addresses {
                present = addresses[link.index] ?? []
            } else {
                present = try kernel { () throws(KernelError) in try links.addresses(index: link.index) }
            }
            let presentPrefixes = Set(present.map(\.prefix))
            drift.missingAddresses = spec.addresses.filter { !presentPrefixes.contains($0) }
            drift.unstoredAddresses = present.filter { $0.owned && !spec.addresses.contains($0.prefix) }.map(\.prefix)
        }
        // Routes exist only on a link that is up: the kernel removes them when it goes down. A stored route
        // the kernel lacks is drift only while the link is up; while it is down (someone set it down),
        // the link's state is the finding, and repair puts the routes back after setting it up.
        if spec.up && aspects.contains(.routes) {
            var routes: [RouteSpec] = []
            if link.up, let owned = view?.routes {
                routes = owned[link.index] ?? []
            } else if link.up {
                routes = try kernel { () throws(KernelError) in try links.ownedRoutes(index: link.index) }
            }
            drift.missingRoutes = spec.routes.filter { route in !routes.contains { $0.sameRoute(as: route) } }
            drift.unstoredRoutes = routes.filter { route in !spec.routes.contains { $0.sameRoute(as: route) } }
        }
        drift.findings += drift.missingAddresses.map { "address \($0) missing" }
            + drift.unstoredAddresses.map { "address \($0) not stored" }
            + (link.up ? drift.missingRoutes.map { "route \($0.destination) missing" } : [])
            + drift.unstoredRoutes.map { "route \($0.destination) not stored" }
        return drift
    }

    /// Puts back what `inspect` found, pipelined: link settings first (routes need the link up), then
    /// addresses, then routes. Removing marked leftovers is best effort: they may already be gone.
    func repair(_ drift: DeviceDrift) throws(TundError) {
        let needed: [LinkChangeRequest] = (drift.settings != LinkSettings() ? [.configure(index: drift.index, drift.settings)] : [])
            + drift.missingAddresses.map { .addAddress($0, index: drift.index, replace: true) }
            + drift.missingRoutes.map { .addRoute($0, index: drift.index, replace: true) }
        try performChanges(needed, bestEffort: drift.unstoredAddresses.map { .deleteAddress($0, index: drift.index) }
            + drift.unstoredRoutes.map { .deleteRoute($0, index: drift.index) })
    }

    // MARK: - Drift

    /// Looks at the named devices (every device when nil) and repairs or reports what others changed.
    /// Called by the drift listener after kernel notices, and after a notice overflow for every device.
    public func reconcile(_ names: Set<String>?) {
        guard isReady else { return }
        let all = names ?? devices.withLock { Set($0.keys) }
        reconcile(looking: Dictionary(uniqueKeysWithValues: all.map { ($0, DriftAspects.all) }))
    }

    /// The same, looking at each device's link and at the `aspects` its notices were about. A pass over
    /// many devices reads the kernel once for all of them (a dump of each kind it needs) rather than once
    /// per device: after a restart every device announces its carrier at once.
    public func reconcile(looking work: [String: DriftAspects]) {
        guard isReady else { return }
        var view: KernelView?
        if work.count > Self.singleReadLimit {
            let needed = work.values.reduce(DriftAspects()) { $0.union($1) }
            view = try? kernel { () throws(KernelError) in
                KernelView(links: try links.links().byName(),
                           addresses: needed.contains(.addresses) ? try links.addressesByLink() : nil,
                           routes: needed.contains(.routes) ? try links.ownedRoutesByLink() : nil)
            }
        }
        for (name, aspects) in work.sorted(by: { $0.key < $1.key }) { reconcileOne(name, aspects: aspects, view: view) }
    }

    /// Up to this many devices, a pass asks the kernel about each one; past it, it dumps once.
    static let singleReadLimit = 32

    private func reconcileOne(_ name: String, aspects requested: DriftAspects, view: KernelView?) {
        var linkChange: Bool?
        var workerEvents: [(DeviceEvent.Kind, [(String, String)])] = []
        let outcome = devices.withLock { (devices) -> (DriftReport, DriftPolicy)? in
            guard var managed = devices[name] else { return nil }
            let record = managed.record
            var aspects = requested
            let link: LinkState?
            if let known = view?.links {
                link = known[record.kernelName]
            } else {
                link = (try? links.link(named: record.kernelName)) ?? nil
            }
            // Link state events come from what the link is now, not from each notice, so the down-then-up
            // of a device being configured is not announced.
            if let link, owned(link), link.up != managed.lastLinkUp {
                managed.lastLinkUp = link.up
                devices[name] = managed
                linkChange = link.up
                // Going down took the link's routes (without a notice for each); look at everything.
                aspects = .all
            }
            var findings: [String]
            var repairError: String?
            let repair = record.spec.policy == .repair
            if let link, owned(link), link.index == managed.index {
                do {
                    let drift = try inspect(record, link: link, view: view, aspects: aspects)
                    findings = drift.findings
                    if repair && !findings.isEmpty {
                        do { try self.repair(drift) } catch { repairError = "\(error)" }
                    }
                } catch {
                    findings = ["could not read the device: \(error)"]
                }
            } else if let link, !owned(link) {
                findings = ["a device tund does not own now holds the name"]
                repairError = repair ? TundError.nameInUse(name: name).description : nil
            } else {
                findings = [link == nil ? "link deleted" : "link replaced (ifindex \(link!.index))"]
                if repair {
                    if managed.worker != nil { workerEvents.append((.workerStopped, [("reason", "link deleted behind tund's back")])) }
                    managed.worker?.stop()
                    managed.device?.close()
                    let fresh = attach(record, existing: link)
                    if let error = fresh.restoreError {
                        workerEvents.append((.workerFailed, [("error", error)]))
                    } else if fresh.worker != nil {
                        workerEvents.append((.workerStarted, [("mode", record.spec.workerMode.rawValue)]))
                    }
                    managed.device = fresh.device
                    managed.worker = fresh.worker
                    managed.index = fresh.index
                    managed.restoreError = fresh.restoreError
                    managed.offloads = fresh.offloads
                    repairError = fresh.restoreError
                }
            }
            guard !findings.isEmpty else { return nil }
            let report = DriftReport(at: Timestamp.now(), findings: findings, repaired: repair && repairError == nil, error: repairError)
            managed.lastDrift = report
            managed.driftDetected += 1
            if report.repaired { managed.driftRepaired += 1 }
            devices[name] = managed
            return (report, record.spec.policy)
        }
        if let up = linkChange { events.publish(up ? .linkUp : .linkDown, device: name) }
        for (kind, detail) in workerEvents { events.publish(kind, device: name, detail) }
        guard let (report, policy) = outcome else { return }
        let detail = [("findings", report.findings.joined(separator: "; ")), ("policy", policy.rawValue)]
        logger.warning("drift detected", metadata: ["device": "\(name)", "findings": "\(report.findings.joined(separator: "; "))",
                                                    "policy": "\(policy.rawValue)", "repaired": "\(report.repaired)"])
        events.publish(.driftDetected, device: name, detail)
        if report.repaired {
            events.publish(.driftRepaired, device: name, detail)
        } else if let error = report.error {
            logger.error("drift repair failed", metadata: ["device": "\(name)", "error": "\(error)"])
        }
    }

    /// What a notice asks a reconciliation to look at, besides the link.
    public static func aspects(of notice: KernelNotice) -> DriftAspects {
        switch notice {
        case .link: []
        case .address: .addresses
        case .route: .routes
        case .overflow: .all
        }
    }

    /// Which devices a kernel notice concerns, by ifindex or name; link state changes become events.
    public func devicesConcerned(by notice: KernelNotice) -> Set<String>? {
        switch notice {
        case .overflow:
            return nil
        case .link(let name, let index, _, _):
            return devices.withLock { devices in
                Set([devices.name(kernelName: name), devices.name(index: index)].compactMap { $0 })
            }
        case .address(let index):
            return devices.withLock { devices in Set([devices.name(index: index)].compactMap { $0 }) }
        case .route(let index):
            guard let index else { return [] }
            return devices.withLock { devices in Set([devices.name(index: index)].compactMap { $0 }) }
        }
    }
}

/// The links, addresses and routes of the namespace, read once for a pass over many devices (restore, a
/// burst of notices). nil parts were not read and are asked of the kernel per device.
struct KernelView {
    var links: [String: LinkState]?
    var addresses: [Int32: [(prefix: IPPrefix, owned: Bool)]]?
    var routes: [Int32: [RouteSpec]]?
}

/// What a reconciliation looks at besides the link's own settings, from the kinds of notices that
/// named the device.
public struct DriftAspects: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let addresses = DriftAspects(rawValue: 1)
    public static let routes = DriftAspects(rawValue: 2)
    public static let all: DriftAspects = [.addresses, .routes]
}

/// The differences `inspect` found on one link and what `repair` does about them. The alias is put back
/// silently (it is tund's own mark); everything else is also a finding.
struct DeviceDrift {
    let index: Int32
    var findings: [String] = []
    var settings = LinkSettings()
    var missingAddresses: [IPPrefix] = []
    var unstoredAddresses: [IPPrefix] = []
    var missingRoutes: [RouteSpec] = []
    var unstoredRoutes: [RouteSpec] = []
}

/// What one restore did, by device name.
public struct RestoreReport: Equatable, Sendable {
    public var reattached: [String] = []
    public var recreated: [String] = []
    public var orphansRemoved: [String] = []
    public var failed: [String: String] = [:]
}
