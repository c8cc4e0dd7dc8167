/// One schema step, compiled in from `migrations/NNNN_name.sql` by the EmbedMigrations plugin.
public struct EmbeddedMigration: Sendable {
    public let version: Int
    public let name: String
    public let sql: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }

    /// Every migration of this build, in version order.
    public static var all: [EmbeddedMigration] { embeddedMigrations.sorted { $0.version < $1.version } }
}

public enum MigrationError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The database was written by a newer tund; this one must not touch it.
    case databaseIsNewer(databaseVersion: Int, knownVersion: Int)
    /// The migration with this version has another name in the database than in this build.
    case mismatch(version: Int, inDatabase: String, inBuild: String)
    case failed(version: Int, name: String, SQLiteError)

    public var description: String {
        switch self {
        case .databaseIsNewer(let found, let known):
            "the database has schema version \(found), newer than this build's \(known): run a newer tund or restore a backup"
        case .mismatch(let version, let inDatabase, let inBuild):
            "migration \(version) is \(inDatabase) in the database but \(inBuild) in this build"
        case .failed(let version, let name, let error):
            "migration \(version) (\(name)) failed: \(error)"
        }
    }
}

/// Applies pending migrations in order, each in its own transaction together with its bookkeeping row,
/// so a crash mid-way leaves the database at the last complete version.
public enum MigrationRunner {
    /// Returns the versions it applied (empty when the schema was current).
    @discardableResult
    public static func migrate(_ db: SQLiteDatabase, migrations: [EmbeddedMigration] = EmbeddedMigration.all) throws -> [Int] {
        try db.execute("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    INTEGER PRIMARY KEY,
                name       TEXT NOT NULL,
                applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
            ) STRICT
            """)
        var applied: [Int: String] = [:]
        for row in try db.query("SELECT version, name FROM schema_migrations") {
            if let version = row[0].integer, let name = row[1].text { applied[Int(version)] = name }
        }
        let known = migrations.map(\.version).max() ?? 0
        if let newest = applied.keys.max(), newest > known {
            throw MigrationError.databaseIsNewer(databaseVersion: newest, knownVersion: known)
        }
        var done: [Int] = []
        for migration in migrations {
            if let name = applied[migration.version] {
                guard name == migration.name else {
                    throw MigrationError.mismatch(version: migration.version, inDatabase: name, inBuild: migration.name)
                }
                continue
            }
            do {
                try db.transaction { (db) throws(SQLiteError) in
                    try db.execute(migration.sql)
                    try db.query("INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                                 [.integer(Int64(migration.version)), .text(migration.name)])
                }
            } catch {
                throw MigrationError.failed(version: migration.version, name: migration.name, error)
            }
            done.append(migration.version)
        }
        return done
    }
}
