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
            let managed = attach(record, existing: byName[record.name])
            if let error = managed.restoreError {
                report.failed[record.name] = error
                logger.error("device not restored", metadata: deviceMetadata(record).merging(["error": "\(error)"]) { $1 })
                events.publish(.workerFailed, device: record.name, [("error", error)])
            } else {
                let how = byName[record.name] == nil ? "re-created" : "re-attached"
                if byName[record.name] == nil { report.recreated.append(record.name) } else { report.reattached.append(record.name) }
                logger.info("device restored", metadata: deviceMetadata(record).merging(["how": "\(how)"]) { $1 })
                events.publish(.workerStarted, device: record.name, [("mode", record.spec.workerMode.rawValue)])
            }
            devices.withLock { $0[record.name] = managed }
        }
        restoreReport.withLock { $0 = report }
        ready.store(true, ordering: .releasing)
        return report
    }

    /// What the last `restore` did.
    public var lastRestore: RestoreReport { restoreReport.withLock { $0 } }

    /// Opens (attaching or creating) the stored device, converges it and starts its worker.
    func attach(_ record: DeviceRecord, existing: LinkState?) -> ManagedDevice {
        if let existing, !owned(existing) {
            return ManagedDevice(record: record, device: nil, worker: nil, index: nil,
                                 restoreError: TundError.nameInUse(name: record.name).description)
        }
        let opened: any OpenDevice
        do {
            opened = try links.open(name: record.name, kind: record.spec.kind, queues: record.spec.queues, exclusive: false,
                                    vnetHeader: record.spec.offload)
        } catch {
            return ManagedDevice(record: record, device: nil, worker: nil, index: nil, restoreError: TundError.kernel(error).description)
        }
        do throws(TundError) {
            try kernel { () throws(KernelError) in
                if let owner = record.spec.owner { try opened.setOwner(owner) }
                if let group = record.spec.group { try opened.setGroup(group) }
            }
            guard let link = try kernel({ () throws(KernelError) in try links.link(named: record.name) }) else {
                throw .kernelFailed(KernelError(operation: "RTM_GETLINK \(record.name)", errno: 19, errnoName: "ENODEV"))
            }
            _ = try converge(record, link: link, apply: true)
            try kernel { () throws(KernelError) in try opened.setPersistent(true) }
            let offloads = record.spec.offload ? opened.enableOffloads() : []
            let worker = try startWorker(record, opened)
            var managed = ManagedDevice(record: record, device: opened, worker: worker, index: link.index)
            managed.lastLinkUp = record.spec.up
            managed.offloads = offloads
            return managed
        } catch {
            opened.close()
            return ManagedDevice(record: record, device: nil, worker: nil, index: nil, restoreError: error.description)
        }
    }

    /// Compares one present link with its record and, when `apply`, repairs every difference. Returns the
    /// differences found. Addresses and routes that carry tund's marks but are not stored are removed;
    /// unmarked ones (someone else's) are left alone.
    func converge(_ record: DeviceRecord, link: LinkState, apply: Bool) throws(TundError) -> [String] {
        let spec = record.spec
        var findings: [String] = []
        var settings = LinkSettings()
        if link.alias != ownerAlias { settings.alias = ownerAlias }
        if link.mtu != spec.mtu {
            findings.append("mtu \(link.mtu), stored \(spec.mtu)")
            settings.mtu = spec.mtu
        }
        if link.up != spec.up {
            findings.append("link \(link.up ? "up" : "down"), stored \(spec.up ? "up" : "down")")
            settings.up = spec.up
        }
        if let mac = spec.mac, link.mac != mac {
            findings.append("mac \(link.mac?.description ?? "none"), stored \(mac)")
            settings.mac = mac
        }
        if apply && settings != LinkSettings() {
            try kernel { () throws(KernelError) in try links.configure(index: link.index, settings) }
        }
        let present = try kernel { () throws(KernelError) in try links.addresses(index: link.index) }
        let presentPrefixes = Set(present.map(\.prefix))
        for prefix in spec.addresses where !presentPrefixes.contains(prefix) {
            findings.append("address \(prefix) missing")
            if apply { try kernel { () throws(KernelError) in try links.addAddress(prefix, index: link.index, replace: true) } }
        }
        for address in present where address.owned && !spec.addresses.contains(address.prefix) {
            findings.append("address \(address.prefix) not stored")
            if apply { try? links.deleteAddress(address.prefix, index: link.index) }
        }
        // Routes exist only on a link that is up: the kernel removes them when it goes down.
        if spec.up {
            let routes = try kernel { () throws(KernelError) in try links.ownedRoutes(index: link.index) }
            for route in spec.routes where !routes.contains(where: { $0.sameRoute(as: route) }) {
                findings.append("route \(route.destination) missing")
                if apply { try kernel { () throws(KernelError) in try links.addRoute(route, index: link.index, replace: true) } }
            }
            for route in routes where !spec.routes.contains(where: { $0.sameRoute(as: route) }) {
                findings.append("route \(route.destination) not stored")
                if apply { try? links.deleteRoute(route, index: link.index) }
            }
        }
        return findings
    }

    // MARK: - Drift

    /// Looks at the named devices (every device when nil) and repairs or reports what others changed.
    /// Called by the drift listener after kernel notices, and after a notice overflow for every device.
    public func reconcile(_ names: Set<String>?) {
        guard isReady else { return }
        let targets = devices.withLock { devices in names.map { Array($0) } ?? Array(devices.keys) }
        for name in targets.sorted() { reconcileOne(name) }
    }

    private func reconcileOne(_ name: String) {
        var linkChange: Bool?
        var workerEvents: [(DeviceEvent.Kind, [(String, String)])] = []
        let outcome = devices.withLock { (devices) -> (DriftReport, DriftPolicy)? in
            guard var managed = devices[name] else { return nil }
            let record = managed.record
            let link = (try? links.link(named: name)) ?? nil
            // Link state events come from what the link is now, not from each notice, so the down-then-up
            // of a device being configured is not announced.
            if let link, owned(link), link.up != managed.lastLinkUp {
                managed.lastLinkUp = link.up
                devices[name] = managed
                linkChange = link.up
            }
            var findings: [String]
            var repairError: String?
            let repair = record.spec.policy == .repair
            if let link, owned(link), link.index == managed.index {
                do {
                    findings = try converge(record, link: link, apply: false)
                } catch {
                    findings = ["could not read the device: \(error)"]
                }
                if repair && !findings.isEmpty {
                    do { _ = try converge(record, link: link, apply: true) } catch { repairError = "\(error)" }
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
                    workerEvents.append(fresh.worker != nil
                        ? (.workerStarted, [("mode", record.spec.workerMode.rawValue)])
                        : (.workerFailed, [("error", fresh.restoreError ?? "unknown")]))
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

    /// Which devices a kernel notice concerns, by ifindex or name; link state changes become events.
    public func devicesConcerned(by notice: KernelNotice) -> Set<String>? {
        switch notice {
        case .overflow:
            return nil
        case .link(let name, let index, _, _):
            return Set(devices.withLock { devices in
                devices.values.filter { $0.record.name == name || $0.index == index }.map(\.record.name)
            })
        case .address(let index):
            return Set(devices.withLock { $0.values.filter { $0.index == index }.map(\.record.name) })
        case .route(let index):
            guard let index else { return [] }
            return Set(devices.withLock { $0.values.filter { $0.index == index }.map(\.record.name) })
        }
    }
}

extension RouteSpec {
    /// The kernel keys a route by destination and metric (table and family aside); the gateway is its
    /// content. No metric means the kernel's default: 0 for IPv4, 1024 for IPv6.
    func sameRoute(as other: RouteSpec) -> Bool {
        let defaultMetric: UInt32 = destination.family == .ipv4 ? 0 : 1024
        return destination == other.destination && gateway == other.gateway
            && (metric ?? defaultMetric) == (other.metric ?? defaultMetric)
    }
}

/// What one restore did, by device name.
public struct RestoreReport: Equatable, Sendable {
    public var reattached: [String] = []
    public var recreated: [String] = []
    public var orphansRemoved: [String] = []
    public var failed: [String: String] = [:]
}
