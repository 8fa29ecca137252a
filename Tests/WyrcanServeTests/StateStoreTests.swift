import Foundation
import Testing
import WyrcanChain
@testable import WyrcanServe

/// The SQLite state store: reports survive reopening, boots are kept per host up to the limit,
/// concurrent reports are all stored, the token secret stays, a newer schema is refused.
@Suite struct StateStoreTests {
    static let mac = MACAddress("52:54:00:12:34:56")!

    func withStore(keepBoots: Int = 50, _ body: (String) throws -> Void) throws {
        let dir = try FileSystem.temporaryDirectory(prefix: "state-test")
        defer { FileSystem.removeTree(dir) }
        try body(dir + "/state.db")
    }

    func report(_ boot: String, _ stage: String, at: Int64, mac: MACAddress = mac) -> StoredReport {
        StoredReport(mac: mac, boot: boot, stage: stage, detail: "d-\(stage)", image: nil, security: nil, received: at, replica: "r1")
    }

    @Test func reportsAndBootsSurviveReopening() throws {
        try withStore { path in
            do {
                let store = try SQLiteStateStore(path: path, keepBoots: 50)
                try store.append(report("00000000000000aa", "booting", at: 3_500), served: 1_000, images: ["r.io/os@sha256:1", "r.io/os2@sha256:2"])
                try store.append(report("00000000000000aa", "kexec", at: 9_000), served: 1_000, images: [])
                try store.append(report("", "failure", at: 10_000, mac: MACAddress("52:54:00:12:34:57")!), served: nil, images: [])
            }
            let store = try SQLiteStateStore(path: path, keepBoots: 50)
            let last = try store.lastReports().sorted { $0.report.mac < $1.report.mac }
            #expect(last.map(\.report.stage) == ["kexec", "failure"] && last.map(\.count) == [2, 1])
            let boots = try store.boots(of: Self.mac, limit: 10)
            #expect(boots.count == 1 && boots[0].served == 1_000 && boots[0].images == ["r.io/os@sha256:1", "r.io/os2@sha256:2"])
            #expect(boots[0].reports.map(\.stage) == ["booting", "kexec"] && boots[0].reports[1].detail == "d-kexec")
        }
    }

    @Test func onlyTheLastBootsAreKept() throws {
        try withStore { path in
            let store = try SQLiteStateStore(path: path, keepBoots: 3)
            for i in 0..<6 {
                let boot = String(format: "%016x", i)
                try store.append(report(boot, "kexec", at: Int64(i * 1000 + 500)), served: Int64(i * 1000), images: [])
            }
            let boots = try store.boots(of: Self.mac, limit: 10)
            #expect(boots.map(\.boot) == ["0000000000000005", "0000000000000004", "0000000000000003"])
            #expect(try store.lastReports().first?.count == 3)
            // A replayed URL cannot grow one boot past its cap; reports without a boot are shown too.
            for i in 0..<(SQLiteStateStore.keptReportsPerBoot + 20) { try store.append(report("0000000000000005", "pulling", at: Int64(10_000 + i)), served: 5000, images: []) }
            try store.append(report("", "failure", at: 20_000), served: nil, images: [])
            let after = try store.boots(of: Self.mac, limit: 10)
            #expect(after.first?.reports.count == SQLiteStateStore.keptReportsPerBoot && after.last?.boot == "" && after.last?.reports.count == 1)
            let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
            #expect(mode == 0o600)
        }
    }

    /// Many request threads at once: every acknowledged report is stored (group commits).
    @Test func concurrentReportsAreAllStored() throws {
        try withStore { path in
            let store = try SQLiteStateStore(path: path, keepBoots: 50)
            try Parallel.map(8, width: 8) { (t) throws(StateError) in
                for i in 0..<100 {
                    let mac = MACAddress(String(format: "52:54:00:00:%02x:%02x", t, i))!
                    try store.append(StoredReport(mac: mac, boot: "", stage: "booting", received: Int64(i), replica: "r"), served: nil, images: [])
                }
            }
            #expect(try store.lastReports().count == 800)
        }
    }

    @Test func theTokenSecretStaysAndANewerSchemaIsRefused() throws {
        try withStore { path in
            let first = try SQLiteStateStore(path: path, keepBoots: 50).reportSecret()
            #expect(first.count == 32)
            #expect(try SQLiteStateStore(path: path, keepBoots: 50).reportSecret() == first)
            try SQLiteDatabase(path: path).execute("PRAGMA user_version = 99")
            #expect(throws: StateError.self) { try SQLiteStateStore(path: path, keepBoots: 50) }
        }
    }

    @Test func tokensBindTheHostAndTheBoot() throws {
        let tokens = try ReportTokens(secret: Array(repeating: 1, count: 32), allowUnauthenticated: false)
        let boot = ReportTokens.newBoot(at: 1_700_000_000_123)
        #expect(ReportTokens.servedTime(of: boot) == 1_700_000_000_123)
        let token = tokens.token(mac: Self.mac, boot: boot)
        #expect(try tokens.check(mac: Self.mac, boot: boot, token: token).get() == boot)
        let other = MACAddress("52:54:00:12:34:57")!
        for (mac, b, t) in [(other, boot, token), (Self.mac, ReportTokens.newBoot(), token), (Self.mac, boot, String(token.reversed()))] {
            #expect(throws: ReportRefusal.self) { try tokens.check(mac: mac, boot: b, token: t).get() }
        }
        #expect(throws: ReportRefusal.self) { try tokens.check(mac: Self.mac, boot: nil, token: nil).get() }
        let open = try ReportTokens(secret: Array(repeating: 1, count: 32), allowUnauthenticated: true)
        #expect(try open.check(mac: Self.mac, boot: nil, token: nil).get() == "")
        let text = "wyr.report=" + ReportTokens.urlTemplate(base: "http://s", mac: Self.mac)
        #expect(tokens.fill(text, mac: Self.mac, boot: boot) == "wyr.report=http://s/v1/report/\(Self.mac)?boot=\(boot)&token=\(token)")
    }
}
