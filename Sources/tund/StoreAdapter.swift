import NetAddress
import TundCore
import TundStore

/// TundStore behind the core's `DeviceStore` port: converts between records and rows.
struct SQLiteDeviceStore: DeviceStore {
    let database: DeviceDatabase

    var instanceID: String { database.instanceID }

    func allDevices() throws(TundError) -> [DeviceRecord] {
        let rows: [StoredDevice]
        do { rows = try database.allDevices() } catch { throw .storageFailed(error.description) }
        var records: [DeviceRecord] = []
        for row in rows {
            guard let record = DeviceRecord(row) else {
                throw .storageFailed("device \(row.name) has a row this build cannot read (type \(row.type), worker \(row.workerMode))")
            }
            records.append(record)
        }
        return records
    }

    func insert(_ record: DeviceRecord, claim: IdempotencyClaim?) throws(TundError) -> DeviceRecord {
        do {
            let stored = try database.insert(StoredDevice(record), claim: claim.map {
                StoredClaim(key: $0.key, fingerprint: $0.fingerprint, deviceName: $0.deviceName)
            })
            return DeviceRecord(stored) ?? record
        } catch where error.isUniqueViolation {
            throw .deviceExists(name: record.name)
        } catch {
            throw .storageFailed(error.description)
        }
    }

    func update(_ record: DeviceRecord) throws(TundError) -> DeviceRecord {
        do {
            let stored = try database.update(StoredDevice(record))
            return DeviceRecord(stored) ?? record
        } catch {
            throw .storageFailed(error.description)
        }
    }

    func claim(key: String) throws(TundError) -> IdempotencyClaim? {
        do {
            return try database.claim(key: key).map { IdempotencyClaim(key: $0.key, fingerprint: $0.fingerprint, deviceName: $0.deviceName) }
        } catch {
            throw .storageFailed(error.description)
        }
    }

    func apply(insert: [DeviceRecord], update: [DeviceRecord], delete: [String]) throws(TundError) -> (inserted: [DeviceRecord], updated: [DeviceRecord]) {
        do {
            let stored = try database.apply(insert: insert.map(StoredDevice.init), update: update.map(StoredDevice.init), delete: delete)
            return (zip(stored.inserted, insert).map { DeviceRecord($0) ?? $1 }, zip(stored.updated, update).map { DeviceRecord($0) ?? $1 })
        } catch where error.isUniqueViolation {
            throw .storageFailed("a declared device's name is stored already: \(error)")
        } catch {
            throw .storageFailed(error.description)
        }
    }

    func delete(name: String) throws(TundError) -> Bool {
        do { return try database.delete(name: name) } catch { throw .storageFailed(error.description) }
    }
}

extension StoredDevice {
    init(_ record: DeviceRecord) {
        let spec = record.spec
        self.init(
            id: record.id, name: record.name, type: spec.kind.rawValue, mtu: spec.mtu, up: spec.up,
            ownerUID: spec.owner, groupGID: spec.group, queues: spec.queues, mac: spec.mac?.description,
            workerMode: spec.workerMode.rawValue, tunnelLocal: spec.tunnel?.local.description,
            tunnelRemote: spec.tunnel?.remote.description, offload: spec.offload, netns: spec.netns, ifname: spec.ifname, driftPolicy: spec.policy.rawValue,
            generation: record.generation,
            addresses: spec.addresses.map(\.description),
            routes: record.routes.map {
                StoredRoute(id: $0.id > 0 ? $0.id : nil, destination: $0.spec.destination.description,
                            gateway: $0.spec.gateway?.description, metric: $0.spec.metric.map(Int64.init))
            },
            createdAt: record.createdAt, updatedAt: record.updatedAt)
    }
}

extension DeviceRecord {
    /// nil when the row holds a value this build does not know (a newer tund wrote it).
    init?(_ row: StoredDevice) {
        guard let kind = DeviceKind(rawValue: row.type), let mode = WorkerMode(rawValue: row.workerMode),
              let policy = DriftPolicy(rawValue: row.driftPolicy) else { return nil }
        var addresses: [IPPrefix] = []
        for text in row.addresses {
            guard case .success(let prefix) = IPPrefix.parse(text) else { return nil }
            addresses.append(prefix)
        }
        var routes: [DeviceRoute] = []
        for route in row.routes {
            guard case .success(let destination) = IPPrefix.parse(route.destination) else { return nil }
            let spec = RouteSpec(destination: destination, gateway: route.gateway.flatMap(IPAddress.init),
                                 metric: route.metric.map { UInt32(truncatingIfNeeded: $0) })
            routes.append(DeviceRoute(id: route.id ?? 0, spec: spec))
        }
        var spec = DeviceSpec(
            name: row.name, kind: kind, mtu: row.mtu, up: row.up, owner: row.ownerUID, group: row.groupGID,
            queues: row.queues, mac: row.mac.flatMap(MACAddress.init), addresses: addresses, routes: routes.map(\.spec),
            workerMode: mode, tunnel: Self.tunnel(row), offload: row.offload, policy: policy)
        spec.netns = row.netns
        spec.ifname = row.ifname
        self.init(id: row.id, name: row.name, spec: spec, routes: routes, generation: row.generation,
                  createdAt: row.createdAt, updatedAt: row.updatedAt)
    }

    private static func tunnel(_ row: StoredDevice) -> TunnelSpec? {
        guard let local = row.tunnelLocal.flatMap(SocketAddress.init), let remote = row.tunnelRemote.flatMap(SocketAddress.init) else { return nil }
        return TunnelSpec(local: local, remote: remote)
    }
}
