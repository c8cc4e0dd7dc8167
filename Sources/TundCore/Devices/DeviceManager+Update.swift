import Errno
import NetAddress

/// Changes to one setting group of a live device; nil fields stay as they are.
public struct DevicePatch: Equatable, Sendable {
    public var mtu: Int?
    public var up: Bool?
    /// A new worker configuration replaces the old one whole: mode, and the tunnel's endpoints.
    public var worker: WorkerConfiguration?
    public var policy: DriftPolicy?

    public init(mtu: Int? = nil, up: Bool? = nil, worker: WorkerConfiguration? = nil, policy: DriftPolicy? = nil) {
        self.mtu = mtu
        self.up = up
        self.worker = worker
        self.policy = policy
    }
}

/// A worker's mode and, for a tunnel, its endpoints; for wireguard, its key, port and peers.
public struct WorkerConfiguration: Equatable, Sendable {
    public var mode: WorkerMode
    public var tunnel: TunnelSpec?
    public var wireguard: WireGuardSpec?

    public init(mode: WorkerMode, tunnel: TunnelSpec? = nil, wireguard: WireGuardSpec? = nil) {
        self.mode = mode
        self.tunnel = tunnel
        self.wireguard = wireguard
    }
}

extension DeviceRecord {
    /// Sets the routes with their ids and keeps `spec.routes` in step.
    mutating func setRoutes(_ routes: [DeviceRoute]) {
        self.routes = routes
        spec.routes = routes.map(\.spec)
    }
}

/// Live changes. Each one: check `If-Match`, validate the whole resulting spec, apply it to the kernel,
/// store it with the next generation, and undo the kernel change if the store refuses. A crash between
/// the kernel and the store leaves marked addresses and routes that the next reconciliation removes.
extension DeviceManager {
    /// `PATCH /devices/{name}`: MTU, link state, worker mode and drift policy, applied without recreating
    /// the device. Equivalent to `ip link set dev NAME mtu M up|down`.
    public func update(_ name: String, _ patch: DevicePatch, ifMatch: Set<Int64>? = nil) throws(TundError) -> DeviceSnapshot {
        try mutate(name, ifMatch: ifMatch, event: "updated") { (managed) throws(TundError) -> (() -> Void)? in
            var spec = managed.record.spec
            if let mtu = patch.mtu { spec.mtu = mtu }
            if let up = patch.up { spec.up = up }
            if let worker = patch.worker {
                spec.workerMode = worker.mode
                spec.tunnel = worker.tunnel
                spec.wireguard = worker.wireguard?.keepingKey(of: spec.wireguard)
            }
            if let policy = patch.policy { spec.policy = policy }
            guard spec != managed.record.spec else { return nil }
            do throws(TundError) {
                try spec.validate()
            } catch .invalidField(let field, let reason) where patch.mtu != nil && field.hasPrefix("addresses[") {
                throw .invalidField(field: "mtu", reason: reason)
            }
            let old = managed.record.spec
            // The policy is tund's own business: it changes even on a device that is not present.
            var changedKernelSide = old
            changedKernelSide.policy = spec.policy
            if changedKernelSide == spec {
                managed.record.spec = spec
                return {}
            }
            let index = try liveIndex(managed)
            let undo = Self.liveChanges(from: spec, to: old, index: index)
            do throws(TundError) {
                try performChanges(Self.liveChanges(from: old, to: spec, index: index))
                try checkTunnelPath(spec, index: index)
            } catch {
                _ = links.perform(undo)
                throw error
            }
            var record = managed.record
            record.spec = spec
            do throws(TundError) {
                _ = try updateWorker(&managed, from: old, to: record)
            } catch {
                _ = links.perform(undo)
                throw error
            }
            managed.record.spec = spec
            return { [links] in _ = links.perform(undo) }
        }
    }

    /// Brings a live device's worker to `record`'s spec: a new worker when its mode, tunnel or keys
    /// changed (`replaceWorker`; true), else the running one told the new MTU (its padding stops there).
    func updateWorker(_ managed: inout ManagedDevice, from old: DeviceSpec, to record: DeviceRecord) throws(TundError) -> Bool {
        let spec = record.spec
        guard spec.workerMode == old.workerMode, spec.tunnel == old.tunnel, spec.wireguard == old.wireguard else {
            try replaceWorker(&managed, with: record)
            return true
        }
        if spec.mtu != old.mtu { managed.worker?.setMTU(spec.mtu) }
        return false
    }

    /// Gives the device the worker `record` asks for: hands it over (mode none: worker stopped, queues
    /// closed, the device stays, persistent), takes it back (attaching to its queues, refused while its
    /// owner holds them), or replaces one worker with another on the same queues. When the new worker
    /// cannot start (a tunnel's port is taken), the previous arrangement is put back and the error thrown.
    func replaceWorker(_ managed: inout ManagedDevice, with record: DeviceRecord) throws(TundError) {
        let previous = managed.record
        guard record.spec.workerMode.attachesWorker else {
            managed.worker?.stop()
            managed.worker = nil
            managed.device?.close()
            managed.device = nil
            return
        }
        let device: any OpenDevice
        if let held = managed.device {
            device = held
        } else {
            do throws(KernelError) {
                device = try links.open(name: record.kernelName, kind: record.spec.kind, queues: record.spec.queues, exclusive: false,
                                        vnetHeader: record.spec.offload)
            } catch where error.errno == .EBUSY {
                throw .kernelRejected(KernelError(operation: "TUNSETIFF \(record.name)", errno: .EBUSY,
                                                  kernelMessage: "another program (the device's owner) holds its queue; tund attaches a worker once it lets go"))
            } catch {
                throw .kernel(error)
            }
        }
        managed.worker?.stop()
        do throws(TundError) {
            managed.worker = try startWorker(record, device)
            managed.device = device
        } catch {
            if managed.device == nil {
                device.close()
            } else {
                // stop() closed the old worker's socket, so a tunnel's port is free again for it.
                managed.worker = restartWorker(previous, device)
            }
            throw error
        }
    }

    /// Starts the previous worker again after a failed switch. If even that fails, it is said in the log
    /// and as a `worker.failed` event, never hidden.
    func restartWorker(_ record: DeviceRecord, _ device: any OpenDevice) -> (any RunningWorker)? {
        do throws(TundError) {
            return try startWorker(record, device)
        } catch {
            logger.error("could not restart the previous worker", metadata: deviceMetadata(record).merging(["error": "\(error)"]) { $1 })
            events.publish(.workerFailed, device: record.name, [("error", error.description)])
            return nil
        }
    }

    /// `POST /devices/{name}/addresses`: `ip addr add PREFIX dev NAME`, stored.
    public func addAddress(_ name: String, _ prefix: IPPrefix, ifMatch: Set<Int64>? = nil) throws(TundError) -> DeviceSnapshot {
        try mutate(name, ifMatch: ifMatch, event: "address added") { (managed) throws(TundError) -> (() -> Void)? in
            var spec = managed.record.spec
            spec.addresses.append(prefix)
            try Self.renamingField(to: "address", from: "addresses[") { () throws(TundError) in try spec.validate() }
            let index = try liveIndex(managed)
            try kernel { () throws(KernelError) in
                if prefix.family == .ipv6 { try links.setIPv6(enabled: true, name: managed.record.kernelName) }
                try links.addAddress(prefix, index: index, replace: false)
            }
            do throws(TundError) {
                try checkTunnelPath(spec, index: index)
            } catch {
                _ = try? links.deleteAddress(prefix, index: index)
                throw error
            }
            managed.record.spec = spec
            return { [links] in _ = try? links.deleteAddress(prefix, index: index) }
        }
    }

    /// `POST /devices/{name}/peers` (a new key) and `PATCH /devices/{name}/peers/{key}` (an existing one,
    /// replaced whole): the peer is stored and handed to the running worker, whose other peers keep their
    /// sessions.
    public func putPeer(_ name: String, _ peer: WireGuardPeerSpec, creating: Bool, ifMatch: Set<Int64>? = nil) throws(TundError) -> DeviceSnapshot {
        try changePeers(name, ifMatch: ifMatch, event: creating ? "peer added" : "peer changed") { (peers) throws(TundError) in
            let existing = peers.firstIndex { $0.publicKey == peer.publicKey }
            switch (creating, existing) {
            case (true, .some): throw .peerExists
            case (false, nil): throw .peerNotFound
            case (true, nil): peers.append(peer)
            case (false, let index?): peers[index] = peer
            }
        }
    }

    /// `DELETE /devices/{name}/peers/{key}`: the peer and its sessions go; the others stay.
    public func deletePeer(_ name: String, publicKey: [UInt8], ifMatch: Set<Int64>? = nil) throws(TundError) -> DeviceSnapshot {
        try changePeers(name, ifMatch: ifMatch, event: "peer deleted") { (peers) throws(TundError) in
            guard let index = peers.firstIndex(where: { $0.publicKey == publicKey }) else { throw .peerNotFound }
            peers.remove(at: index)
        }
    }

    private func changePeers(_ name: String, ifMatch: Set<Int64>?, event: String,
                             _ change: (inout [WireGuardPeerSpec]) throws(TundError) -> Void) throws(TundError) -> DeviceSnapshot {
        try mutate(name, ifMatch: ifMatch, event: event) { (managed) throws(TundError) -> (() -> Void)? in
            guard var wireguard = managed.record.spec.wireguard else {
                throw .notWireGuard(name: name)
            }
            let before = wireguard.peers
            try change(&wireguard.peers)
            var spec = managed.record.spec
            spec.wireguard = wireguard
            try Self.renamingField(to: "public_key", from: "worker.peers[") { () throws(TundError) in try spec.validate() }
            managed.record.spec = spec
            guard let worker = managed.worker else { return {} }
            if !worker.setWireGuardPeers(wireguard.peers) { try replaceWorker(&managed, with: managed.record) }
            return { _ = worker.setWireGuardPeers(before) }
        }
    }

    /// `DELETE /devices/{name}/addresses/{address}`: `ip addr del PREFIX dev NAME`, stored. `address`
    /// is `ADDRESS/LENGTH` or a bare address (addresses are unique per device).
    public func deleteAddress(_ name: String, _ address: String, ifMatch: Set<Int64>? = nil) throws(TundError) -> DeviceSnapshot {
        try mutate(name, ifMatch: ifMatch, event: "address deleted") { (managed) throws(TundError) -> (() -> Void)? in
            var spec = managed.record.spec
            guard let position = spec.addresses.firstIndex(where: { $0.description == address || $0.address.description == address || IPAddress(address) == $0.address }) else {
                throw .addressNotFound("device \(name) has no address \(address)")
            }
            let prefix = spec.addresses.remove(at: position)
            // The kernel drops a route whose gateway only this address made reachable; refuse rather
            // than keep a stored route that can never be installed.
            if let route = spec.routes.first(where: { route in
                route.gateway.map { gateway in prefix.contains(gateway) && !spec.addresses.contains { $0.contains(gateway) } } ?? false
            }) {
                throw .invalidField(field: "address", reason: "the route to \(route.destination) via \(route.gateway!) needs \(prefix); delete that route first")
            }
            let index = try liveIndex(managed)
            try ignoringAbsence { () throws(KernelError) in try links.deleteAddress(prefix, index: index) }
            managed.record.spec = spec
            return { [links] in _ = try? links.addAddress(prefix, index: index, replace: true) }
        }
    }

    /// `POST /devices/{name}/routes`: `ip route add ... dev NAME`, stored; the new route is the last.
    public func addRoute(_ name: String, _ route: RouteSpec, ifMatch: Set<Int64>? = nil) throws(TundError) -> DeviceSnapshot {
        try mutate(name, ifMatch: ifMatch, event: "route added") { (managed) throws(TundError) -> (() -> Void)? in
            var spec = managed.record.spec
            spec.routes.append(route)
            try Self.renamingField(to: "destination", from: "routes[") { () throws(TundError) in try spec.validate() }
            let index = try liveIndex(managed)
            if route.destination.family == .ipv6 {
                try kernel { () throws(KernelError) in try links.setIPv6(enabled: true, name: managed.record.kernelName) }
            }
            // On a device that is down the route is only stored: the kernel takes it when the link comes up.
            guard spec.up else {
                managed.record.setRoutes(managed.record.routes + [DeviceRoute(id: 0, spec: route)])
                return {}
            }
            try kernel { () throws(KernelError) in try links.addRoute(route, index: index, replace: false) }
            do throws(TundError) {
                try checkTunnelPath(spec, index: index)
            } catch {
                _ = try? links.deleteRoute(route, index: index)
                throw error
            }
            managed.record.setRoutes(managed.record.routes + [DeviceRoute(id: 0, spec: route)])
            return { [links] in _ = try? links.deleteRoute(route, index: index) }
        }
    }

    /// `DELETE /devices/{name}/routes/{id}`: `ip route del ... dev NAME`, stored.
    public func deleteRoute(_ name: String, id: Int64, ifMatch: Set<Int64>? = nil) throws(TundError) -> DeviceSnapshot {
        try mutate(name, ifMatch: ifMatch, event: "route deleted") { (managed) throws(TundError) -> (() -> Void)? in
            guard let route = managed.record.routes.first(where: { $0.id == id }) else {
                throw .routeNotFound("device \(name) has no route \(id)")
            }
            let index = try liveIndex(managed)
            try ignoringAbsence { () throws(KernelError) in try links.deleteRoute(route.spec, index: index) }
            managed.record.setRoutes(managed.record.routes.filter { $0.id != id })
            return { [links] in _ = try? links.addRoute(route.spec, index: index, replace: true) }
        }
    }

    /// The common frame of a live change. `change` edits `managed` (record and worker), applies the kernel
    /// side, and returns how to undo that side, or nil when nothing changed.
    private func mutate(_ name: String, ifMatch: Set<Int64>?, event: String,
                        _ change: (inout ManagedDevice) throws(TundError) -> (() -> Void)?) throws(TundError) -> DeviceSnapshot {
        guard isReady else { throw .notReady }
        var workerReplaced = false
        let (managed, changed) = try devices.withLock { (devices) throws(TundError) -> (ManagedDevice, Bool) in
            guard var managed = devices[name] else { throw .deviceNotFound(name: name) }
            try Self.check(ifMatch, managed.record)
            let before = managed
            let undo: (() -> Void)?
            do throws(TundError) {
                undo = try change(&managed)
            } catch {
                // A change that failed after replacing the worker has put the old mode's worker back.
                if managed.worker !== before.worker {
                    devices[name]?.worker = managed.worker
                    devices[name]?.device = managed.device
                }
                throw error
            }
            guard let undo else { return (managed, false) }
            managed.record.generation += 1
            managed.record.updatedAt = Timestamp.now()
            do throws(TundError) {
                managed.record = try store.update(managed.record)
            } catch {
                undo()
                if before.worker !== managed.worker || before.device !== managed.device {
                    // The worker was replaced for the new mode: give the old mode back.
                    var restored = managed
                    do throws(TundError) {
                        try replaceWorker(&restored, with: before.record)
                    } catch {
                        logger.error("could not put the previous worker back", metadata: deviceMetadata(before.record).merging(["error": "\(error)"]) { $1 })
                        events.publish(.workerFailed, device: name, [("error", error.description)])
                    }
                    restored.record = before.record
                    devices[name] = restored
                }
                throw error
            }
            devices[name] = managed
            devices.version += 1
            workerReplaced = managed.worker !== before.worker || managed.device !== before.device
            return (managed, true)
        }
        if changed {
            logger.info("device \(event)", metadata: deviceMetadata(managed.record))
            events.publish(.updated, device: name, [("change", event), ("generation", "\(managed.record.generation)")])
            if workerReplaced {
                events.publish(.workerStopped, device: name, [("reason", managed.worker == nil ? "device handed to its owner" : "worker changed")])
                if managed.worker != nil {
                    events.publish(.workerStarted, device: name, [("mode", managed.record.spec.workerMode.rawValue)])
                }
            }
        }
        return snapshot(managed, link: (try? links.link(named: managed.record.kernelName)) ?? nil)
    }

    /// Runs a whole-spec validation for a request about one item, naming the request's field instead of
    /// the item's place in the spec: "addresses[2]" -> "address", "routes[1].gateway" -> "gateway",
    /// "routes[1]" (listed twice) -> "destination".
    private static func renamingField(to name: String, from prefix: String, _ validate: () throws(TundError) -> Void) throws(TundError) {
        do throws(TundError) {
            try validate()
        } catch .invalidField(let field, let reason) where field.hasPrefix(prefix) {
            // "routes[1].gateway" names a field of the body itself; "routes[1]" or "addresses[2]" the body.
            let rest = field.drop { $0 != "]" }.dropFirst().drop { $0 == "." }
            throw .invalidField(field: rest.isEmpty ? name : String(rest), reason: reason)
        }
    }

    /// The ifindex of a device whose link tund holds; a device that failed to restore has none.
    private func liveIndex(_ managed: ManagedDevice) throws(TundError) -> Int32 {
        guard let index = managed.index else {
            throw .kernelRejected(KernelError(operation: "change \(managed.record.name)", errno: .ENODEV,
                                              kernelMessage: "the device is not present" + (managed.restoreError.map { ": \($0)" } ?? "")))
        }
        return index
    }

    /// Deleting what is already gone succeeds: the goal is its absence.
    private func ignoringAbsence(_ body: () throws(KernelError) -> Void) throws(TundError) {
        do {
            try body()
        } catch where Self.meansAbsent(error) {
            return
        } catch {
            throw .kernel(error)
        }
    }

    /// The errnos of removing what is not there (an address, a route, a link).
    static func meansAbsent(_ error: KernelError) -> Bool {
        [Errno.ESRCH, .ENOENT, .EADDRNOTAVAIL, .ENODEV].contains(error.errno)
    }
}
