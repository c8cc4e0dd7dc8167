import CSQLite
import Synchronization

/// A value bound to or read from an SQLite statement: the three storage classes tund uses.
public enum SQLiteValue: Equatable, Sendable {
    case integer(Int64)
    case text(String)
    case null

    public var integer: Int64? { if case .integer(let value) = self { value } else { nil } }
    public var text: String? { if case .text(let value) = self { value } else { nil } }
}

/// A failed SQLite call: the (extended) result code, SQLite's message, and what tund was doing.
public struct SQLiteError: Error, Equatable, Sendable, CustomStringConvertible {
    public let operation: String
    public let code: Int32
    public let extendedCode: Int32
    public let message: String

    /// SQLITE_CONSTRAINT_UNIQUE / _PRIMARYKEY: a row with that key exists.
    public var isUniqueViolation: Bool { extendedCode == 2067 || extendedCode == 1555 }

    public var description: String { "\(operation): \(message) (SQLite code \(extendedCode))" }
}

/// One SQLite connection, used by one caller at a time (the mutex), in WAL mode with foreign keys on.
///
/// Durability: `synchronous=FULL`. Every mutation the API acknowledges has reached the disk, so a power
/// cut never loses a device the client was told exists. Control-plane writes are rare (measured here:
/// about 4k single-row transactions per second with FULL), so NORMAL's speed buys nothing worth that risk.
public final class SQLiteDatabase: Sendable {
    private let handle: Mutex<OpaquePointer>

    /// Opens (creating if needed) the database at `path`.
    public init(path: String) throws(SQLiteError) {
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let code = sqlite3_open_v2(path, &db, flags, nil)
        guard code == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(db)
            throw SQLiteError(operation: "open \(path)", code: code, extendedCode: code, message: message)
        }
        sqlite3_extended_result_codes(db, 1)
        // A second process (sqlite3 shell, a backup) may hold the lock briefly; wait instead of failing.
        sqlite3_busy_timeout(db, 5000)
        handle = Mutex(db)
        try execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
        // journal_mode answers with the mode it got: a read-only or odd filesystem may refuse WAL.
        let mode = try query("PRAGMA journal_mode").first?.first?.text
        guard mode == "wal" else {
            throw SQLiteError(operation: "PRAGMA journal_mode = WAL", code: SQLITE_ERROR, extendedCode: SQLITE_ERROR,
                              message: "the database stayed in journal mode \(mode ?? "?")")
        }
    }

    deinit { handle.withLock { _ = sqlite3_close_v2($0) } }

    /// Runs one or more statements that return no rows.
    public func execute(_ sql: String) throws(SQLiteError) {
        try handle.withLock { (db: inout OpaquePointer) throws(SQLiteError) in try Self.exec(db, sql) }
    }

    /// Runs one statement with positional bindings (`?`) and returns every row.
    @discardableResult
    public func query(_ sql: String, _ bindings: [SQLiteValue] = []) throws(SQLiteError) -> [[SQLiteValue]] {
        try handle.withLock { (db: inout OpaquePointer) throws(SQLiteError) in try Self.run(db, sql, bindings).rows }
    }

    /// The same, each row read by column name.
    public func rows(_ sql: String, _ bindings: [SQLiteValue] = []) throws(SQLiteError) -> [SQLiteRow] {
        try handle.withLock { (db: inout OpaquePointer) throws(SQLiteError) in try Self.run(db, sql, bindings, columnNames: true).named() }
    }

    /// Runs `body` inside BEGIN IMMEDIATE ... COMMIT, rolling back when it throws. The connection is held
    /// from BEGIN to COMMIT, so no other caller's statement lands inside the transaction. Not reentrant:
    /// `body` uses the transaction it is given, never this object.
    public func transaction<T: Sendable>(_ body: (SQLiteTransaction) throws(SQLiteError) -> T) throws(SQLiteError) -> T {
        try handle.withLock { (db: inout OpaquePointer) throws(SQLiteError) -> T in
            let transaction = SQLiteTransaction(db: db)
            try transaction.execute("BEGIN IMMEDIATE")
            do throws(SQLiteError) {
                let result = try body(transaction)
                try transaction.execute("COMMIT")
                return result
            } catch {
                try? transaction.execute("ROLLBACK")
                throw error
            }
        }
    }

    fileprivate static func exec(_ db: OpaquePointer, _ sql: String) throws(SQLiteError) {
        var error: UnsafeMutablePointer<CChar>?
        let code = sqlite3_exec(db, sql, nil, nil, &error)
        if code != SQLITE_OK {
            let message = error.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(db))
            sqlite3_free(error)
            throw SQLiteError(operation: String(sql.prefix(60)), code: code & 0xff, extendedCode: sqlite3_extended_errcode(db), message: message)
        }
    }

    /// `columnNames`: read the statement's column names too (for rows read by name).
    fileprivate static func run(_ db: OpaquePointer, _ sql: String, _ bindings: [SQLiteValue], columnNames: Bool = false) throws(SQLiteError) -> ResultRows {
        func failure(_ code: Int32) -> SQLiteError {
            SQLiteError(operation: String(sql.prefix(60)), code: code & 0xff, extendedCode: sqlite3_extended_errcode(db),
                        message: String(cString: sqlite3_errmsg(db)))
        }
        var statement: OpaquePointer?
        let prepared = sqlite3_prepare_v2(db, sql, -1, &statement, nil)
        guard prepared == SQLITE_OK, let statement else { throw failure(prepared) }
        defer { sqlite3_finalize(statement) }
        for (index, value) in bindings.enumerated() {
            let position = Int32(index + 1)
            let code = switch value {
            case .integer(let number): sqlite3_bind_int64(statement, position, number)
            case .text(let text): sqlite3_bind_text(statement, position, text, -1, tund_sqlite_transient())
            case .null: sqlite3_bind_null(statement, position)
            }
            guard code == SQLITE_OK else { throw failure(code) }
        }
        var rows: [[SQLiteValue]] = []
        let columns = columnNames ? (0..<sqlite3_column_count(statement)).map { String(cString: sqlite3_column_name(statement, $0)) } : []
        while true {
            let step = sqlite3_step(statement)
            if step == SQLITE_DONE { return ResultRows(columns: columns, rows: rows) }
            guard step == SQLITE_ROW else { throw failure(step) }
            rows.append((0..<sqlite3_column_count(statement)).map { column in
                switch sqlite3_column_type(statement, column) {
                case SQLITE_INTEGER: .integer(sqlite3_column_int64(statement, column))
                case SQLITE_NULL: .null
                default: .text(String(cString: sqlite3_column_text(statement, column)))
                }
            })
        }
    }
}

/// The connection inside one transaction (`SQLiteDatabase.transaction`): statements run without taking
/// the connection's lock again, since the transaction holds it.
public struct SQLiteTransaction: @unchecked Sendable {
    fileprivate let db: OpaquePointer

    public func execute(_ sql: String) throws(SQLiteError) { try SQLiteDatabase.exec(db, sql) }

    @discardableResult
    public func query(_ sql: String, _ bindings: [SQLiteValue] = []) throws(SQLiteError) -> [[SQLiteValue]] {
        try SQLiteDatabase.run(db, sql, bindings).rows
    }

    public func rows(_ sql: String, _ bindings: [SQLiteValue] = []) throws(SQLiteError) -> [SQLiteRow] {
        try SQLiteDatabase.run(db, sql, bindings, columnNames: true).named()
    }

    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(db) }
}

/// What a statement returned: its column names and its rows.
struct ResultRows {
    let columns: [String]
    let rows: [[SQLiteValue]]

    /// The rows, each read by column name.
    func named() -> [SQLiteRow] {
        let positions = Dictionary(columns.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        return rows.map { SQLiteRow(values: $0, positions: positions) }
    }
}

/// One result row, read by column name, so a query's column order is not a second place to keep in step.
public struct SQLiteRow: Sendable {
    let values: [SQLiteValue]
    let positions: [String: Int]

    /// `.null` for a column the query did not select (a programming error the tests catch as a wrong value).
    public subscript(_ column: String) -> SQLiteValue {
        positions[column].map { values[$0] } ?? .null
    }
}
