import CSQLite
import Foundation

/// Why the state store failed: the operation and SQLite's own message.
struct StateError: Error, CustomStringConvertible, Sendable {
    var operation: String
    var message: String
    var description: String { "state store: \(operation): \(message)" }
}

/// A value bound to or read from a statement.
enum SQLiteValue: Sendable, Equatable {
    case integer(Int64)
    case text(String)
    case blob([UInt8])
    case null
}

/// One SQLite connection (Debian's libsqlite3), behind a lock: SQLite's own locking between
/// connections (WAL: readers never wait for the writer) and ours within one.
final class SQLiteDatabase: @unchecked Sendable {
    private let handle: OpaquePointer
    private let lock = NSLock()
    let path: String

    init(path: String, readOnly: Bool = false) throws(StateError) {
        self.path = path
        var db: OpaquePointer?
        let flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX
        let status = sqlite3_open_v2(path, &db, flags, nil)
        guard status == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close(db)
            throw StateError(operation: "open \(path)", message: message)
        }
        handle = db
        // A writer holding the lock briefly (a batch commit) makes others wait, not fail.
        sqlite3_busy_timeout(db, 10_000)
    }

    deinit { sqlite3_close(handle) }

    /// Runs `body` with this connection to itself (statements are not shared between threads).
    func locked<T>(_ body: () throws(StateError) -> T) throws(StateError) -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// Runs SQL without results (several statements allowed).
    func execute(_ sql: String) throws(StateError) {
        var error: UnsafeMutablePointer<CChar>?
        guard sqlite3_exec(handle, sql, nil, nil, &error) == SQLITE_OK else {
            let message = error.map { String(cString: $0) } ?? lastError
            sqlite3_free(error)
            throw StateError(operation: String(sql.prefix(60)), message: message)
        }
    }

    /// Runs one statement with `values` bound, returning every row.
    @discardableResult
    func query(_ sql: String, _ values: [SQLiteValue] = []) throws(StateError) -> [[SQLiteValue]] {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
            throw StateError(operation: String(sql.prefix(60)), message: lastError)
        }
        defer { sqlite3_finalize(statement) }
        for (i, value) in values.enumerated() { try bind(value, at: Int32(i + 1), in: statement, sql: sql) }
        var rows: [[SQLiteValue]] = []
        while true {
            let status = sqlite3_step(statement)
            if status == SQLITE_DONE { return rows }
            guard status == SQLITE_ROW else { throw StateError(operation: String(sql.prefix(60)), message: lastError) }
            rows.append((0..<sqlite3_column_count(statement)).map { column(statement, $0) })
        }
    }

    private func bind(_ value: SQLiteValue, at index: Int32, in statement: OpaquePointer, sql: String) throws(StateError) {
        let status: Int32
        switch value {
        case .integer(let n): status = sqlite3_bind_int64(statement, index, n)
        case .text(let s): status = wyr_sqlite_bind_text(statement, index, s, -1)
        case .blob(let b): status = b.withUnsafeBytes { wyr_sqlite_bind_blob(statement, index, $0.baseAddress, Int32($0.count)) }
        case .null: status = sqlite3_bind_null(statement, index)
        }
        guard status == SQLITE_OK else { throw StateError(operation: String(sql.prefix(60)), message: lastError) }
    }

    private func column(_ statement: OpaquePointer, _ i: Int32) -> SQLiteValue {
        switch sqlite3_column_type(statement, i) {
        case SQLITE_INTEGER: return .integer(sqlite3_column_int64(statement, i))
        case SQLITE_TEXT: return .text(sqlite3_column_text(statement, i).map { String(cString: $0) } ?? "")
        case SQLITE_BLOB:
            let count = Int(sqlite3_column_bytes(statement, i))
            guard count > 0, let bytes = sqlite3_column_blob(statement, i) else { return .blob([]) }
            return .blob(Array(UnsafeRawBufferPointer(start: bytes, count: count)))
        default: return .null
        }
    }

    /// Runs `body` in one transaction (`BEGIN IMMEDIATE`: the write lock from the start).
    func transaction<T>(_ body: () throws(StateError) -> T) throws(StateError) -> T {
        try execute("BEGIN IMMEDIATE")
        do throws(StateError) {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    private var lastError: String { String(cString: sqlite3_errmsg(handle)) }
}

extension SQLiteValue {
    var text: String? { if case .text(let s) = self { return s } else { return nil } }
    var integer: Int64? { if case .integer(let n) = self { return n } else { return nil } }
    var bytes: [UInt8]? { if case .blob(let b) = self { return b } else { return nil } }
}
