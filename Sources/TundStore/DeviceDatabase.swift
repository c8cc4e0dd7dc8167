/// A device row with its addresses and routes: the desired state tund restores.
/// Plain values in storage form; TundStore knows nothing of validation or the kernel.
public struct StoredDevice: Equatable, Sendable {
    public var id: Int64?
    public var name: String
    public var type: String
    public var mtu: Int
    public var up: Bool
    public var ownerUID: Int64?
    public var groupGID: Int64?
    public var queues: Int
    public var mac: String?
    public var workerMode: String
    /// The tunnel worker's endpoints, `IP:PORT`; nil for other modes.
    public var tunnelLocal: String?
    public var tunnelRemote: String?
    /// Offloads on (IFF_VNET_HDR + TUNSETOFFLOAD).
    public var offload: Bool
    /// "repair" or "report".
    public var driftPolicy: String
    /// The network namespace (name or path); nil for tund's own.
    public var netns: String?
    /// The link's name when it differs from `name`.
    public var ifname: String?
    /// The wireguard worker's configuration (JSON text, secrets included); nil in other modes.
    public var wireguard: String?
    public var generation: Int64
    /// `ADDRESS/LENGTH` texts, in the client's order.
    public var addresses: [String]
    public var routes: [StoredRoute]
    public var createdAt: String
    public var updatedAt: String

    public init(id: Int64? = nil, name: String, type: String, mtu: Int, up: Bool, ownerUID: Int64?, groupGID: Int64?,
                queues: Int, mac: String?, workerMode: String, tunnelLocal: String? = nil, tunnelRemote: String? = nil,
                offload: Bool = false, netns: String? = nil, ifname: String? = nil, wireguard: String? = nil,
                driftPolicy: String = "repair", generation: Int64 = 1,
                addresses: [String], routes: [StoredRoute], createdAt: String, updatedAt: String) {
        self.id = id
        self.name = name
        self.type = type
        self.mtu = mtu
        self.up = up
        self.ownerUID = ownerUID
        self.groupGID = groupGID
        self.queues = queues
        self.mac = mac
        self.workerMode = workerMode
        self.tunnelLocal = tunnelLocal
        self.tunnelRemote = tunnelRemote
        self.offload = offload
        self.netns = netns
        self.ifname = ifname
        self.wireguard = wireguard
        self.driftPolicy = driftPolicy
        self.generation = generation
        self.addresses = addresses
        self.routes = routes
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

public struct StoredRoute: Equatable, Sendable {
    public var id: Int64?
    public var destination: String
    public var gateway: String?
    public var metric: Int64?

    public init(id: Int64? = nil, destination: String, gateway: String?, metric: Int64?) {
        self.id = id
        self.destination = destination
        self.gateway = gateway
        self.metric = metric
    }
}

/// The devices table and its children, on top of a migrated `SQLiteDatabase`.
public final class DeviceDatabase: Sendable {
    public let database: SQLiteDatabase
    /// This database's identity, written by the first migration; marks the links it owns.
    public let instanceID: String

    /// Opens `path`, applies pending migrations and reads the instance id.
    public init(path: String) throws {
        database = try SQLiteDatabase(path: path)
        try MigrationRunner.migrate(database)
        guard let instance = try database.query("SELECT value FROM meta WHERE key = 'instance'").first?.first?.text else {
            throw SQLiteError(operation: "read instance id", code: 1, extendedCode: 1, message: "meta has no 'instance' row")
        }
        instanceID = instance
    }

    /// Every stored device with its addresses and routes, by id (creation order).
    public func allDevices() throws(SQLiteError) -> [StoredDevice] {
        let rows = try database.rows("""
            SELECT id, name, type, mtu, up, owner_uid, group_gid, queues, mac, worker_mode, created_at, updated_at,
                   drift_policy, generation, tunnel_local, tunnel_remote, offload, netns, ifname, wireguard
            FROM devices ORDER BY id
            """)
        var addresses: [Int64: [String]] = [:]
        for row in try database.rows("SELECT device_id, address, prefix_length FROM addresses ORDER BY device_id, position") {
            addresses[row["device_id"].integer!, default: []].append("\(row["address"].text!)/\(row["prefix_length"].integer!)")
        }
        var routes: [Int64: [StoredRoute]] = [:]
        for row in try database.rows("SELECT device_id, id, destination, gateway, metric FROM routes ORDER BY id") {
            routes[row["device_id"].integer!, default: []].append(
                StoredRoute(id: row["id"].integer, destination: row["destination"].text!, gateway: row["gateway"].text,
                            metric: row["metric"].integer))
        }
        return rows.map { row in
            let id = row["id"].integer!
            return StoredDevice(
                id: id, name: row["name"].text!, type: row["type"].text!, mtu: Int(row["mtu"].integer!), up: row["up"].integer! != 0,
                ownerUID: row["owner_uid"].integer, groupGID: row["group_gid"].integer, queues: Int(row["queues"].integer!),
                mac: row["mac"].text, workerMode: row["worker_mode"].text!, tunnelLocal: row["tunnel_local"].text,
                tunnelRemote: row["tunnel_remote"].text, offload: row["offload"].integer == 1,
                netns: row["netns"].text, ifname: row["ifname"].text, wireguard: row["wireguard"].text,
                driftPolicy: row["drift_policy"].text!, generation: row["generation"].integer!,
                addresses: addresses[id] ?? [], routes: routes[id] ?? [],
                createdAt: row["created_at"].text!, updatedAt: row["updated_at"].text!)
        }
    }

    /// Inserts a device with its addresses and routes, and the idempotency key's claim if any, in one
    /// transaction; returns it with its ids. A name that exists fails with a unique violation
    /// (`SQLiteError.isUniqueViolation`).
    public func insert(_ device: StoredDevice, claim: StoredClaim? = nil) throws(SQLiteError) -> StoredDevice {
        try database.transaction { (db) throws(SQLiteError) in
            let stored = try Self.insert(db, device)
            if let claim {
                try db.query("DELETE FROM idempotency_keys WHERE created_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 day')")
                try db.query("INSERT INTO idempotency_keys (key, fingerprint, device_name) VALUES (?, ?, ?)",
                             [.text(claim.key), .text(claim.fingerprint), .text(claim.deviceName)])
            }
            return stored
        }
    }

    /// Rewrites a stored device: its fields, and its addresses and routes (routes keep their ids; a route
    /// with id nil or 0 gets a new one). Fails when no row has that id.
    public func update(_ device: StoredDevice) throws(SQLiteError) -> StoredDevice {
        try database.transaction { (db) throws(SQLiteError) in try Self.update(db, device) }
    }

    /// A whole declared set in one transaction: rows inserted, rewritten and deleted (by name) together,
    /// or none of them. Returns the inserted and updated devices with their ids, in the order given.
    public func apply(insert: [StoredDevice], update: [StoredDevice], delete: [String]) throws(SQLiteError) -> (inserted: [StoredDevice], updated: [StoredDevice]) {
        try database.transaction { (db) throws(SQLiteError) in
            // Deletions first: a device re-created under its name is a delete and an insert.
            for name in delete { try db.query("DELETE FROM devices WHERE name = ?", [.text(name)]) }
            var updated: [StoredDevice] = []
            for device in update { updated.append(try Self.update(db, device)) }
            var inserted: [StoredDevice] = []
            for device in insert { inserted.append(try Self.insert(db, device)) }
            return (inserted, updated)
        }
    }

    private static func insert(_ db: SQLiteTransaction, _ device: StoredDevice) throws(SQLiteError) -> StoredDevice {
        try db.query("""
            INSERT INTO devices (name, type, mtu, up, owner_uid, group_gid, queues, mac, worker_mode, drift_policy,
                                 generation, created_at, updated_at, tunnel_local, tunnel_remote, offload, netns, ifname, wireguard)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, [
                .text(device.name), .text(device.type), .integer(Int64(device.mtu)), .integer(device.up ? 1 : 0),
                device.ownerUID.map(SQLiteValue.integer) ?? .null, device.groupGID.map(SQLiteValue.integer) ?? .null,
                .integer(Int64(device.queues)), device.mac.map(SQLiteValue.text) ?? .null, .text(device.workerMode),
                .text(device.driftPolicy), .integer(device.generation), .text(device.createdAt), .text(device.updatedAt),
                device.tunnelLocal.map(SQLiteValue.text) ?? .null, device.tunnelRemote.map(SQLiteValue.text) ?? .null,
                .integer(device.offload ? 1 : 0), device.netns.map(SQLiteValue.text) ?? .null,
                device.ifname.map(SQLiteValue.text) ?? .null, device.wireguard.map(SQLiteValue.text) ?? .null,
            ])
        var stored = device
        stored.id = db.lastInsertRowID
        try insertChildren(db, &stored)
        return stored
    }

    private static func update(_ db: SQLiteTransaction, _ device: StoredDevice) throws(SQLiteError) -> StoredDevice {
        guard let id = device.id else {
            throw SQLiteError(operation: "update device", code: 1, extendedCode: 1, message: "the device has no id")
        }
        try db.query("""
            UPDATE devices SET mtu = ?, up = ?, owner_uid = ?, group_gid = ?, mac = ?, worker_mode = ?, drift_policy = ?,
                               generation = ?, updated_at = ?, tunnel_local = ?, tunnel_remote = ?, wireguard = ?
            WHERE id = ?
            """, [
                .integer(Int64(device.mtu)), .integer(device.up ? 1 : 0), device.ownerUID.map(SQLiteValue.integer) ?? .null,
                device.groupGID.map(SQLiteValue.integer) ?? .null, device.mac.map(SQLiteValue.text) ?? .null,
                .text(device.workerMode), .text(device.driftPolicy), .integer(device.generation), .text(device.updatedAt),
                device.tunnelLocal.map(SQLiteValue.text) ?? .null, device.tunnelRemote.map(SQLiteValue.text) ?? .null,
                device.wireguard.map(SQLiteValue.text) ?? .null, .integer(id),
            ])
        guard try db.query("SELECT changes()").first?.first?.integer == 1 else {
            throw SQLiteError(operation: "update device \(device.name)", code: 12, extendedCode: 12, message: "no such device row")
        }
        try db.query("DELETE FROM addresses WHERE device_id = ?", [.integer(id)])
        try db.query("DELETE FROM routes WHERE device_id = ?", [.integer(id)])
        var stored = device
        try insertChildren(db, &stored)
        return stored
    }

    private static func insertChildren(_ db: SQLiteTransaction, _ device: inout StoredDevice) throws(SQLiteError) {
        let id = device.id!
        for (position, address) in device.addresses.enumerated() {
            let parts = address.split(separator: "/")
            try db.query("INSERT INTO addresses (device_id, position, address, prefix_length) VALUES (?, ?, ?, ?)",
                         [.integer(id), .integer(Int64(position)), .text(String(parts[0])), .integer(Int64(parts[1])!)])
        }
        for index in device.routes.indices {
            let route = device.routes[index]
            let routeID: SQLiteValue = route.id.map { $0 > 0 ? SQLiteValue.integer($0) : .null } ?? .null
            try db.query("INSERT INTO routes (id, device_id, destination, gateway, metric) VALUES (?, ?, ?, ?, ?)",
                         [routeID, .integer(id), .text(route.destination), route.gateway.map(SQLiteValue.text) ?? .null,
                          route.metric.map(SQLiteValue.integer) ?? .null])
            device.routes[index].id = db.lastInsertRowID
        }
    }

    /// The claim made on an idempotency key within the last 24 hours.
    public func claim(key: String) throws(SQLiteError) -> StoredClaim? {
        try database.query("""
            SELECT key, fingerprint, device_name FROM idempotency_keys
            WHERE key = ? AND created_at >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 day')
            """, [.text(key)]).first.map { StoredClaim(key: $0[0].text!, fingerprint: $0[1].text!, deviceName: $0[2].text!) }
    }

    /// Deletes a device and (by cascade) its addresses and routes. Returns false when no such row existed.
    @discardableResult
    public func delete(name: String) throws(SQLiteError) -> Bool {
        try database.transaction { (db) throws(SQLiteError) in
            let existed = try db.query("SELECT 1 FROM devices WHERE name = ?", [.text(name)]).isEmpty == false
            try db.query("DELETE FROM devices WHERE name = ?", [.text(name)])
            return existed
        }
    }
}

/// An idempotency key and the device its request made.
public struct StoredClaim: Equatable, Sendable {
    public var key: String
    public var fingerprint: String
    public var deviceName: String

    public init(key: String, fingerprint: String, deviceName: String) {
        self.key = key
        self.fingerprint = fingerprint
        self.deviceName = deviceName
    }
}
