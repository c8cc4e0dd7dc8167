import NetAddress
import TundCore
import TundJSON
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
            tunnelRemote: spec.tunnel?.remote.description, offload: spec.offload, netns: spec.netns, ifname: spec.ifname,
            wireguard: spec.wireguard.map(WireGuardRow.text), driftPolicy: spec.policy.rawValue,
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
        if let text = row.wireguard {
            guard let wireguard = WireGuardRow.spec(text) else { return nil }
            spec.wireguard = wireguard
        }
        self.init(id: row.id, name: row.name, spec: spec, routes: routes, generation: row.generation,
                  createdAt: row.createdAt, updatedAt: row.updatedAt)
    }

    private static func tunnel(_ row: StoredDevice) -> TunnelSpec? {
        guard let local = row.tunnelLocal.flatMap(SocketAddress.init), let remote = row.tunnelRemote.flatMap(SocketAddress.init) else { return nil }
        return TunnelSpec(local: local, remote: remote)
    }
}

/// A wireguard configuration as its row holds it: JSON, keys in hex.
enum WireGuardRow {
    static func text(_ spec: WireGuardSpec) -> String {
        let peers: [JSONValue] = spec.peers.map { peer in
            .object([
                ("public_key", .string(hex(peer.publicKey))), ("preshared_key", .optional(peer.presharedKey.map(hex))),
                ("endpoint", .optional(peer.endpoint?.description)), ("allowed_ips", .array(peer.allowedIPs.map { .string($0.description) })),
                ("persistent_keepalive", peer.persistentKeepalive.map { .integer(Int64($0)) } ?? .null),
            ])
        }
        let value = JSONValue.object([("private_key", .string(hex(spec.privateKey))), ("listen_port", .integer(Int64(spec.listenPort))),
                                      ("peers", .array(peers))])
        return String(decoding: value.serialized(), as: UTF8.self)
    }

    /// nil when the text is not what `text` writes.
    static func spec(_ text: String) -> WireGuardSpec? {
        guard let value = try? JSONValue.parse(Array(text.utf8)), let privateKey = value["private_key"]?.stringValue.flatMap(bytes),
              let port = value["listen_port"]?.integerValue, let peerValues = value["peers"]?.arrayValue else { return nil }
        var peers: [WireGuardPeerSpec] = []
        for peer in peerValues {
            guard let publicKey = peer["public_key"]?.stringValue.flatMap(bytes) else { return nil }
            var allowed: [IPPrefix] = []
            for prefix in peer["allowed_ips"]?.arrayValue ?? [] {
                guard let text = prefix.stringValue, case .success(let parsed) = IPPrefix.parse(text) else { return nil }
                allowed.append(parsed)
            }
            peers.append(WireGuardPeerSpec(
                publicKey: publicKey, presharedKey: peer["preshared_key"]?.stringValue.flatMap(bytes),
                endpoint: peer["endpoint"]?.stringValue.flatMap(SocketAddress.init), allowedIPs: allowed,
                persistentKeepalive: peer["persistent_keepalive"]?.integerValue.map(Int.init)))
        }
        return WireGuardSpec(privateKey: privateKey, listenPort: Int(port), peers: peers)
    }

    private static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        for byte in bytes { text += [digits[Int(byte >> 4)], digits[Int(byte & 15)]] }
        return String(decoding: text, as: UTF8.self)
    }

    private static func bytes(_ text: String) -> [UInt8]? {
        let characters = Array(text.utf8)
        guard characters.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        var index = 0
        while index < characters.count {
            guard let high = nibble(characters[index]), let low = nibble(characters[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func nibble(_ character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): character - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): character - UInt8(ascii: "a") + 10
        default: nil
        }
    }
}
