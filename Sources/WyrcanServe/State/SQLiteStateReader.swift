import Foundation
import WyrcanChain

/// Reads a state store's file over a read-only connection: the server's own reads, and
/// `wyrcan-serve hosts` while the server runs (it never writes or migrates).
final class SQLiteStateReader: Sendable {
    private let db: SQLiteDatabase

    init(path: String) throws(StateError) {
        db = try SQLiteDatabase(path: path, readOnly: true)
        let version = Int(try db.locked { () throws(StateError) in try db.query("PRAGMA user_version").first?.first?.integer ?? 0 })
        guard version == SQLiteStateStore.migrations.count else {
            throw StateError(operation: "read \(path)", message: "schema version \(version), this wyrcan-serve reads \(SQLiteStateStore.migrations.count): use the wyrcan-serve that writes it")
        }
    }

    func lastReports() throws(StateError) -> [(report: StoredReport, count: Int)] {
        let rows = try db.locked { () throws(StateError) in
            try db.query("""
                SELECT r.mac, r.boot, r.stage, r.detail, r.image, r.security, r.received, r.replica, c.n
                FROM reports r JOIN (SELECT mac, MAX(id) AS id, COUNT(*) AS n FROM reports GROUP BY mac) c ON r.id = c.id
                """)
        }
        return rows.compactMap { row in Self.report(row).map { ($0, Int(row[8].integer ?? 1)) } }
    }

    /// A host's last `limit` boots, newest first, with their reports; reports without a boot id
    /// come as one more "boot" with an empty id.
    func boots(of mac: MACAddress, limit: Int) throws(StateError) -> [BootRecord] {
        let host: SQLiteValue = .text(mac.description)
        let (bootRows, reportRows) = try db.locked { () throws(StateError) in
            (try db.query("SELECT boot, served, images FROM boots WHERE mac = ? ORDER BY started DESC LIMIT ?", [host, .integer(Int64(limit))]),
             try db.query("SELECT mac, boot, stage, detail, image, security, received, replica FROM reports WHERE mac = ? ORDER BY id", [host]))
        }
        let reports = Dictionary(grouping: reportRows.compactMap(Self.report), by: \.boot)
        var boots = bootRows.map { row in
            let boot = row[0].text ?? ""
            return BootRecord(boot: boot, served: row[1].integer, images: (row[2].text ?? "").split(separator: "\n").map(String.init), reports: reports[boot] ?? [])
        }
        if let unattributed = reports[""] { boots.append(BootRecord(boot: "", served: nil, images: [], reports: unattributed)) }
        return boots
    }

    static func report(_ row: [SQLiteValue]) -> StoredReport? {
        guard let mac = row[0].text.flatMap(MACAddress.init), let boot = row[1].text, let stage = row[2].text else { return nil }
        return StoredReport(mac: mac, boot: boot, stage: stage, detail: row[3].text, image: row[4].text, security: row[5].text,
                            received: row[6].integer ?? 0, replica: row[7].text ?? "")
    }
}
