import Dispatch
import Foundation
import WyrcanChain

/// The state store in one SQLite file (WAL mode): zero setup, one server. Writes go through one
/// writer thread that commits whatever has queued up in one transaction (group commit), so a
/// report is acknowledged only once committed, and a burst of reports costs few commits. With
/// `synchronous=NORMAL` a commit reaches the file (the WAL) before it is acknowledged: a killed
/// server loses nothing it acknowledged; a power loss can lose the last commits.
final class SQLiteStateStore: StateStore, @unchecked Sendable {
    /// The schema's migrations, in order; `PRAGMA user_version` counts those applied.
    static let migrations: [String] = [
        """
        CREATE TABLE reports (id INTEGER PRIMARY KEY, mac TEXT NOT NULL, boot TEXT NOT NULL, stage TEXT NOT NULL,
                              detail TEXT, image TEXT, security TEXT, received INTEGER NOT NULL, replica TEXT NOT NULL);
        CREATE INDEX reports_by_host ON reports (mac, id);
        CREATE TABLE boots (mac TEXT NOT NULL, boot TEXT NOT NULL, started INTEGER NOT NULL, served INTEGER, images TEXT,
                            PRIMARY KEY (mac, boot));
        CREATE TABLE settings (key TEXT PRIMARY KEY, value BLOB NOT NULL);
        """,
        "CREATE INDEX reports_by_boot ON reports (mac, boot, id);",
    ]
    /// Reports kept per boot: a boot's stages are a handful; a replayed URL cannot grow one.
    static let keptReportsPerBoot = 100
    /// Reports without a boot id (`--allow-unauthenticated-reports`) kept per host.
    static let keptReportsWithoutBoot = 200

    let path: String
    let keepBoots: Int
    private let writer: SQLiteDatabase
    private let reads: SQLiteStateReader
    private let queue = Locked<[PendingWrite]>([])
    private let wake = DispatchSemaphore(value: 0)

    init(path: String, keepBoots: Int) throws(StateError) {
        self.path = path
        self.keepBoots = keepBoots
        writer = try SQLiteDatabase(path: path)
        // (It holds the report tokens' secret: readable by the server's user only.)
        chmod(path, 0o600)
        try writer.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL")
        try Self.migrate(writer)
        reads = try SQLiteStateReader(path: path)
        let thread = Thread { [self] in writeForever() }
        thread.name = "state-writer"
        thread.start()
    }

    /// Applies the migrations the file has not had yet, in one transaction.
    static func migrate(_ db: SQLiteDatabase) throws(StateError) {
        try db.transaction { () throws(StateError) in
            let applied = Int(try db.query("PRAGMA user_version").first?.first?.integer ?? 0)
            guard applied <= migrations.count else {
                throw StateError(operation: "open \(db.path)", message: "schema version \(applied) is newer than this wyrcan-serve knows (\(migrations.count)): use a newer wyrcan-serve")
            }
            for migration in migrations.dropFirst(applied) { try db.execute(migration) }
            try db.execute("PRAGMA user_version = \(migrations.count)")
        }
    }

    // MARK: - Writes

    /// A report waiting for the writer thread; `done` is signalled once it is committed (or failed).
    final class PendingWrite: @unchecked Sendable {
        let report: StoredReport
        let served: Int64?
        let images: [String]
        let done = DispatchSemaphore(value: 0)
        var error: StateError?
        init(_ report: StoredReport, served: Int64?, images: [String]) {
            (self.report, self.served, self.images) = (report, served, images)
        }
    }

    func append(_ report: StoredReport, served: Int64?, images: [String]) throws(StateError) {
        let pending = PendingWrite(report, served: served, images: images)
        queue.withLock { $0.append(pending) }
        wake.signal()
        pending.done.wait()
        if let error = pending.error { throw error }
    }

    private func writeForever() {
        while true {
            wake.wait()
            let batch = queue.withLock { q in defer { q.removeAll(keepingCapacity: true) }; return q }
            guard !batch.isEmpty else { continue }
            var failure: StateError? = nil
            do throws(StateError) { try writer.locked { () throws(StateError) in try write(batch) } } catch { failure = error }
            for pending in batch {
                pending.error = failure
                pending.done.signal()
            }
        }
    }

    private func write(_ batch: [PendingWrite]) throws(StateError) {
        try writer.transaction { () throws(StateError) in
            var hosts = Set<MACAddress>()
            var boots = Set<[String]>()
            for pending in batch {
                let r = pending.report
                try writer.query("INSERT INTO reports (mac, boot, stage, detail, image, security, received, replica) VALUES (?,?,?,?,?,?,?,?)",
                                 [.text(r.mac.description), .text(r.boot), .text(r.stage), Self.value(r.detail), Self.value(r.image),
                                  Self.value(r.security), .integer(r.received), .text(r.replica)])
                if !r.boot.isEmpty {
                    try writer.query("INSERT OR IGNORE INTO boots (mac, boot, started, served, images) VALUES (?,?,?,?,?)",
                                     [.text(r.mac.description), .text(r.boot), .integer(pending.served ?? r.received), pending.served.map { .integer($0) } ?? .null,
                                      .text(pending.images.joined(separator: "\n"))])
                }
                hosts.insert(r.mac)
                if !r.boot.isEmpty { boots.insert([r.mac.description, r.boot]) }
            }
            for boot in boots {
                try writer.query("DELETE FROM reports WHERE mac = ?1 AND boot = ?2 AND id NOT IN (SELECT id FROM reports WHERE mac = ?1 AND boot = ?2 ORDER BY id DESC LIMIT ?3)",
                                 [.text(boot[0]), .text(boot[1]), .integer(Int64(Self.keptReportsPerBoot))])
            }
            for mac in hosts { try prune(mac) }
        }
    }

    /// Keeps a host's last `keepBoots` boots (and their reports), and its last reports without one.
    private func prune(_ mac: MACAddress) throws(StateError) {
        let host: SQLiteValue = .text(mac.description)
        try writer.query("DELETE FROM boots WHERE mac = ?1 AND boot NOT IN (SELECT boot FROM boots WHERE mac = ?1 ORDER BY started DESC LIMIT ?2)", [host, .integer(Int64(keepBoots))])
        try writer.query("DELETE FROM reports WHERE mac = ?1 AND boot != '' AND boot NOT IN (SELECT boot FROM boots WHERE mac = ?1)", [host])
        try writer.query("DELETE FROM reports WHERE mac = ?1 AND boot = '' AND id NOT IN (SELECT id FROM reports WHERE mac = ?1 AND boot = '' ORDER BY id DESC LIMIT ?2)",
                         [host, .integer(Int64(Self.keptReportsWithoutBoot))])
    }

    static func value(_ text: String?) -> SQLiteValue { text.map { .text($0) } ?? .null }

    // MARK: - Reads

    func lastReports() throws(StateError) -> [(report: StoredReport, count: Int)] { try reads.lastReports() }

    func boots(of mac: MACAddress, limit: Int) throws(StateError) -> [BootRecord] { try reads.boots(of: mac, limit: limit) }

    func reportSecret() throws(StateError) -> [UInt8] {
        try writer.locked { () throws(StateError) in
            try writer.transaction { () throws(StateError) in
                if let stored = try writer.query("SELECT value FROM settings WHERE key = 'report-secret'").first?.first?.bytes, stored.count == 32 {
                    return stored
                }
                var generator = SystemRandomNumberGenerator()
                let secret = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
                try writer.query("INSERT OR REPLACE INTO settings (key, value) VALUES ('report-secret', ?)", [.blob(secret)])
                return secret
            }
        }
    }
}
