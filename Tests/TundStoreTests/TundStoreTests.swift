#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import TundStore

/// A fresh database file in its own temporary directory.
func temporaryDatabasePath() -> String {
    var template = Array("/tmp/tund-store-test-XXXXXX".utf8CString)
    let directory = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    return directory + "/tund.db"
}

@Suite struct MigrationRunnerTests {
    @Test func appliesEmbeddedMigrationsOnceInOrder() throws {
        let db = try SQLiteDatabase(path: temporaryDatabasePath())
        let applied = try MigrationRunner.migrate(db)
        #expect(applied == EmbeddedMigration.all.map(\.version))
        #expect(applied.first == 1)
        #expect(try MigrationRunner.migrate(db).isEmpty)
        let tables = try db.query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").compactMap { $0[0].text }
        #expect(Set(tables).isSuperset(of: ["addresses", "devices", "meta", "routes", "schema_migrations"]))
    }

    @Test func embeddedMigrationsComeFromTheSQLFiles() {
        let first = EmbeddedMigration.all.first
        #expect(first?.name == "0001_initial.sql")
        #expect(first?.sql.contains("CREATE TABLE devices") == true)
    }

    @Test func aFailingMigrationLeavesTheDatabaseAtTheLastGoodVersion() throws {
        let db = try SQLiteDatabase(path: temporaryDatabasePath())
        let migrations = [
            EmbeddedMigration(version: 1, name: "0001_a.sql", sql: "CREATE TABLE a (x INTEGER);"),
            EmbeddedMigration(version: 2, name: "0002_b.sql", sql: "CREATE TABLE b (x INTEGER); INSERT INTO nowhere VALUES (1);"),
        ]
        #expect(throws: MigrationError.self) { try MigrationRunner.migrate(db, migrations: migrations) }
        #expect(try db.query("SELECT version FROM schema_migrations").compactMap { $0[0].integer } == [1])
        #expect(try db.query("SELECT name FROM sqlite_master WHERE name = 'b'").isEmpty)
    }

    @Test func refusesADatabaseFromANewerBuild() throws {
        let db = try SQLiteDatabase(path: temporaryDatabasePath())
        try MigrationRunner.migrate(db)
        try db.query("INSERT INTO schema_migrations (version, name) VALUES (999, '0999_future.sql')")
        #expect(throws: MigrationError.databaseIsNewer(databaseVersion: 999, knownVersion: EmbeddedMigration.all.last!.version)) {
            try MigrationRunner.migrate(db)
        }
    }

    @Test func refusesARenamedMigration() throws {
        let db = try SQLiteDatabase(path: temporaryDatabasePath())
        try MigrationRunner.migrate(db, migrations: [EmbeddedMigration(version: 1, name: "0001_a.sql", sql: "SELECT 1;")])
        #expect(throws: MigrationError.mismatch(version: 1, inDatabase: "0001_a.sql", inBuild: "0001_b.sql")) {
            try MigrationRunner.migrate(db, migrations: [EmbeddedMigration(version: 1, name: "0001_b.sql", sql: "SELECT 1;")])
        }
    }

    @Test func usesWALWithFullSync() throws {
        let db = try SQLiteDatabase(path: temporaryDatabasePath())
        #expect(try db.query("PRAGMA journal_mode").first?.first?.text == "wal")
        #expect(try db.query("PRAGMA synchronous").first?.first?.integer == 2)  // FULL
        #expect(try db.query("PRAGMA foreign_keys").first?.first?.integer == 1)
    }
}

@Suite struct DeviceDatabaseTests {
    func sample(_ name: String) -> StoredDevice {
        StoredDevice(name: name, type: "tun", mtu: 1400, up: true, ownerUID: 1000, groupGID: nil, queues: 1, mac: nil,
                     workerMode: "count", addresses: ["10.10.0.1/24", "fd00:10::1/64"],
                     routes: [StoredRoute(destination: "10.20.0.0/16", gateway: "10.10.0.2", metric: nil),
                              StoredRoute(destination: "10.30.0.0/16", gateway: nil, metric: 7)],
                     createdAt: "2026-11-25T00:00:00.000Z", updatedAt: "2026-11-25T00:00:00.000Z")
    }

    @Test func roundTripsADeviceWithAddressesAndRoutes() throws {
        let db = try DeviceDatabase(path: temporaryDatabasePath())
        let stored = try db.insert(sample("tun0"))
        #expect(stored.id != nil && stored.routes.allSatisfy { $0.id != nil })
        let all = try db.allDevices()
        #expect(all == [stored])
        #expect(all[0].addresses == ["10.10.0.1/24", "fd00:10::1/64"])
    }

    @Test func aTakenNameIsAUniqueViolationAndChangesNothing() throws {
        let db = try DeviceDatabase(path: temporaryDatabasePath())
        _ = try db.insert(sample("tun0"))
        do {
            _ = try db.insert(sample("tun0"))
            Issue.record("duplicate insert succeeded")
        } catch {
            #expect(error.isUniqueViolation)
        }
        #expect(try db.allDevices().count == 1)
        #expect(try db.database.query("SELECT COUNT(*) FROM routes").first?.first?.integer == 2)
    }

    @Test func applyWritesInsertsUpdatesAndDeletesTogether() throws {
        let db = try DeviceDatabase(path: temporaryDatabasePath())
        var a = try db.insert(sample("a"))
        _ = try db.insert(sample("b"))
        a.mtu = 1300
        a.generation = 2
        let (inserted, updated) = try db.apply(insert: [sample("c"), sample("b")], update: [a], delete: ["b"])
        #expect(inserted.map(\.name) == ["c", "b"] && inserted.allSatisfy { $0.id != nil && $0.routes.allSatisfy { $0.id != nil } })
        #expect(updated.map(\.mtu) == [1300])
        let all = try db.allDevices()
        #expect(all.map(\.name) == ["a", "c", "b"] && all[0].mtu == 1300 && all[0].generation == 2)
    }

    @Test func aFailingApplyChangesNothing() throws {
        let db = try DeviceDatabase(path: temporaryDatabasePath())
        var a = try db.insert(sample("a"))
        _ = try db.insert(sample("b"))
        let before = try db.allDevices()
        a.mtu = 1300
        do {
            // "b" is neither deleted nor free: the insert fails after the update and the delete ran.
            _ = try db.apply(insert: [sample("c"), sample("b")], update: [a], delete: ["x"])
            Issue.record("an apply with a taken name succeeded")
        } catch {
            #expect(error.isUniqueViolation)
        }
        #expect(try db.allDevices() == before)
    }

    @Test func rowsAreReadByColumnName() throws {
        let db = try DeviceDatabase(path: temporaryDatabasePath())
        _ = try db.insert(sample("a"))
        let row = try #require(try db.database.rows("SELECT mtu, name FROM devices").first)
        #expect(row["name"].text == "a" && row["mtu"].integer == 1400 && row["nothing"] == .null)
    }

    @Test func deleteCascadesToAddressesAndRoutes() throws {
        let db = try DeviceDatabase(path: temporaryDatabasePath())
        _ = try db.insert(sample("tun0"))
        #expect(try db.delete(name: "tun0"))
        #expect(try !db.delete(name: "tun0"))
        #expect(try db.database.query("SELECT COUNT(*) FROM addresses").first?.first?.integer == 0)
        #expect(try db.database.query("SELECT COUNT(*) FROM routes").first?.first?.integer == 0)
    }

    @Test func instanceIDIsStableAcrossOpens() throws {
        let path = temporaryDatabasePath()
        let first = try DeviceDatabase(path: path).instanceID
        #expect(first.count == 8)
        #expect(try DeviceDatabase(path: path).instanceID == first)
        #expect(try DeviceDatabase(path: temporaryDatabasePath()).instanceID != first)
    }

    @Test func upgradingToNamespacesKeepsEveryDeviceWithItsAddressesAndRoutes() throws {
        let path = temporaryDatabasePath()
        let old = try SQLiteDatabase(path: path)
        _ = try MigrationRunner.migrate(old, migrations: EmbeddedMigration.all.filter { $0.version < 5 })
        try old.execute("""
            INSERT INTO devices (name, type, mtu, up, queues, worker_mode, created_at, updated_at, generation)
                VALUES ('tun0', 'tun', 1400, 1, 1, 'count', 't', 't', 3);
            INSERT INTO addresses VALUES (1, 0, '10.10.0.1', 24);
            INSERT INTO routes (device_id, destination, gateway) VALUES (1, '10.20.0.0/16', '10.10.0.2');
            """)
        let db = try DeviceDatabase(path: path)
        let all = try db.allDevices()
        #expect(all.count == 1 && all[0].name == "tun0" && all[0].generation == 3 && all[0].netns == nil && all[0].ifname == nil)
        #expect(all[0].addresses == ["10.10.0.1/24"] && all[0].routes.map(\.destination) == ["10.20.0.0/16"])
        #expect(try db.database.query("PRAGMA foreign_key_check").isEmpty)
        #expect(try db.delete(name: "tun0"))
        #expect(try db.database.query("SELECT COUNT(*) FROM routes").first?.first?.integer == 0)
    }

    @Test func linkNamesAreUniquePerNamespaceAndLongNamesNeedOne() throws {
        let db = try DeviceDatabase(path: temporaryDatabasePath())
        var a = sample("pod-a-eth0"), b = sample("pod-b-eth0"), home = sample("eth0")
        a.netns = "/run/netns/a"; a.ifname = "eth0"
        b.netns = "/run/netns/b"; b.ifname = "eth0"
        _ = try db.insert(a)
        _ = try db.insert(b)
        _ = try db.insert(home)
        var clash = sample("pod-a-other")
        clash.netns = "/run/netns/a"; clash.ifname = "eth0"
        #expect(throws: SQLiteError.self) { try db.insert(clash) }
        #expect(throws: SQLiteError.self) { try db.insert(sample("a-name-over-fifteen")) }
        var long = sample("a-name-over-fifteen")
        long.ifname = "tun7"
        _ = try db.insert(long)
        #expect(try db.allDevices().map(\.name) == ["pod-a-eth0", "pod-b-eth0", "eth0", "a-name-over-fifteen"])
    }

    @Test func schemaChecksRejectNonsenseEvenIfCodeLetItThrough() throws {
        let db = try DeviceDatabase(path: temporaryDatabasePath())
        var bad = sample("x")
        bad.mtu = 10
        #expect(throws: SQLiteError.self) { try db.insert(bad) }
        bad = sample("abcdefghijklmnop")
        #expect(throws: SQLiteError.self) { try db.insert(bad) }
    }
}
