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
    /// `ADDRESS/LENGTH` texts, in the client's order.
    public var addresses: [String]
    public var routes: [StoredRoute]
    public var createdAt: String
    public var updatedAt: String

    public init(id: Int64? = nil, name: String, type: String, mtu: Int, up: Bool, ownerUID: Int64?, groupGID: Int64?,
                queues: Int, mac: String?, workerMode: String, addresses: [String], routes: [StoredRoute],
                createdAt: String, updatedAt: String) {
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
        let rows = try database.query("""
            SELECT id, name, type, mtu, up, owner_uid, group_gid, queues, mac, worker_mode, created_at, updated_at
            FROM devices ORDER BY id
            """)
        var addresses: [Int64: [String]] = [:]
        for row in try database.query("SELECT device_id, address, prefix_length FROM addresses ORDER BY device_id, position") {
            addresses[row[0].integer!, default: []].append("\(row[1].text!)/\(row[2].integer!)")
        }
        var routes: [Int64: [StoredRoute]] = [:]
        for row in try database.query("SELECT device_id, id, destination, gateway, metric FROM routes ORDER BY id") {
            routes[row[0].integer!, default: []].append(
                StoredRoute(id: row[1].integer, destination: row[2].text!, gateway: row[3].text, metric: row[4].integer))
        }
        return rows.map { row in
            let id = row[0].integer!
            return StoredDevice(
                id: id, name: row[1].text!, type: row[2].text!, mtu: Int(row[3].integer!), up: row[4].integer! != 0,
                ownerUID: row[5].integer, groupGID: row[6].integer, queues: Int(row[7].integer!), mac: row[8].text,
                workerMode: row[9].text!, addresses: addresses[id] ?? [], routes: routes[id] ?? [],
                createdAt: row[10].text!, updatedAt: row[11].text!)
        }
    }

    /// Inserts a device with its addresses and routes in one transaction; returns it with its ids.
    /// A name that exists fails with a unique violation (`SQLiteError.isUniqueViolation`).
    public func insert(_ device: StoredDevice) throws(SQLiteError) -> StoredDevice {
        try database.transaction { (db) throws(SQLiteError) in
            try db.query("""
                INSERT INTO devices (name, type, mtu, up, owner_uid, group_gid, queues, mac, worker_mode, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, [
                    .text(device.name), .text(device.type), .integer(Int64(device.mtu)), .integer(device.up ? 1 : 0),
                    device.ownerUID.map(SQLiteValue.integer) ?? .null, device.groupGID.map(SQLiteValue.integer) ?? .null,
                    .integer(Int64(device.queues)), device.mac.map(SQLiteValue.text) ?? .null, .text(device.workerMode),
                    .text(device.createdAt), .text(device.updatedAt),
                ])
            var stored = device
            let id = db.lastInsertRowID
            stored.id = id
            for (position, address) in device.addresses.enumerated() {
                let parts = address.split(separator: "/")
                try db.query("INSERT INTO addresses (device_id, position, address, prefix_length) VALUES (?, ?, ?, ?)",
                             [.integer(id), .integer(Int64(position)), .text(String(parts[0])), .integer(Int64(parts[1])!)])
            }
            for index in stored.routes.indices {
                let route = stored.routes[index]
                try db.query("INSERT INTO routes (device_id, destination, gateway, metric) VALUES (?, ?, ?, ?)",
                             [.integer(id), .text(route.destination), route.gateway.map(SQLiteValue.text) ?? .null,
                              route.metric.map(SQLiteValue.integer) ?? .null])
                stored.routes[index].id = db.lastInsertRowID
            }
            return stored
        }
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
