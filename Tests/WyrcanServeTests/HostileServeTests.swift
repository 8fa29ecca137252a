import Foundation
import Logging
import Testing
import WyrcanChain
import WyrcanHTTP
@testable import WyrcanFleet
@testable import WyrcanServe

/// Inventories and requests made to hurt: refused in one line, in bounded work.
@Suite struct HostileInventoryTests {
    func errors(_ text: String) -> [String] {
        do { _ = try InventoryLoader.load(text: text, file: "fleet.yaml"); return [] } catch { return error.errors.map(\.description) }
    }

    /// 596 bytes naming 10^9 nodes, used as mapping keys: Yams would hash each whole tree.
    @Test func anAliasBombAsKeysIsRefusedBeforeParsing() {
        var yaml = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        for (i, name) in ["b", "c", "d", "e", "f", "g", "h", "i"].enumerated() {
            let previous = i == 0 ? "a" : ["b", "c", "d", "e", "f", "g", "h"][i - 1]
            yaml += "\(name): &\(name) [" + Array(repeating: "*\(previous)", count: 10).joined(separator: ", ") + "]\n"
        }
        yaml += "hosts:\n  *i : {}\n  ? *h\n  : {}\n"
        let e = errors(yaml)
        #expect(e == ["fleet.yaml:11: yaml: an alias (*NAME) as a mapping key is refused: it can stand for a tree of any size; write the key out"], "\(e)")
        // Aliases as values are fine (and anchors in quoted text are not aliases).
        #expect(YAMLAliasCheck.firstAliasKey(in: "x: &v 1\ny: *v\nz: \"*v: no\"\nw: 'it''s *v: no'\n") == nil)
        #expect(YAMLAliasCheck.firstAliasKey(in: "hosts: {*k: 1}") == 1)
        // Keys in every spelling libyaml reads: a flow entry without a value, an explicit key on
        // the next line, after a `#` that is not a comment, after a line break that is only CR.
        for (yaml, line) in [("x: {*bomb}", 1), ("?\n  *bomb\n: v", 2), ("{a#b: 1, *bomb: v}", 1), ("a: 1\r*bomb: v", 2), ("a: 1\u{2028}*bomb: v", 2)] {
            #expect(YAMLAliasCheck.firstAliasKey(in: yaml) == line, "\(yaml)")
        }
        for yaml in ["x: [*a, *b]", "x: {k: *v}", "- *a\n- *b", "motd: it's *not: a key # *nor: this"] {
            #expect(YAMLAliasCheck.firstAliasKey(in: yaml) == nil, "\(yaml)")
        }
    }

    @Test func settingsOfTheWrongShapeAreErrors() {
        let e = errors("""
            releases: {r: {kernel: k, initrd: i}}
            defaults: {release: [r], image: r.io/os, platform: {}}
            hosts:
              "52:54:00:12:34:56": {group: [x]}
              "ｆｆ:54:00:12:34:56": {}
            """)
        #expect(e.contains { $0.hasPrefix("fleet.yaml:2: defaults.release: must be a single value") }, "\(e)")
        #expect(e.contains { $0.hasPrefix("fleet.yaml:2: defaults.platform: must be a single value") }, "\(e)")
        #expect(e.contains { $0.hasPrefix("fleet.yaml:4: hosts.52:54:00:12:34:56.group: must be a single value") }, "\(e)")
        #expect(e.contains { $0.hasPrefix("fleet.yaml:5: hosts.ｆｆ:54:00:12:34:56: not a MAC address") }, "\(e)")
    }

    /// A 1 MB value in an error is shown shortened, on one line.
    @Test func hugeValuesAreShortenedInErrors() {
        let huge = String(repeating: "x", count: 1 << 20)
        let e = errors("""
            releases: {r: {kernel: k, initrd: i}}
            defaults: {release: r, image: r.io/os}
            hosts:
              "\(huge)\\n\(huge)": {}
              "52:54:00:12:34:56": {release: "\(huge)"}
            """)
        #expect(!e.isEmpty && e.allSatisfy { $0.count < 700 && !$0.contains("\n") }, "\(e.map { $0.prefix(200) })")
    }
}

/// The report table and /v1/hosts stay bounded whatever the network sends.
@Suite struct HostileRequestTests {
    final class Captured: LogHandler, @unchecked Sendable {
        var lines: [String] = []
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .info
        subscript(metadataKey key: String) -> Logger.Metadata.Value? { get { nil } set {} }
        func log(event: LogEvent) { lines.append(event.message.description) }
    }

    func server(unknown: String, log: Captured = Captured()) throws -> BootServer {
        let inventory = try InventoryLoader.load(text: """
            releases: {r: {kernel: k, initrd: i}}
            defaults: {release: r, image: r.io/os}
            hosts: {"52:54:00:00:00:01": {}}
            unknown: \(unknown)
            """, file: "fleet.yaml")
        return BootServer(store: InventoryStore(fixed: inventory, logger: .init(label: "t")), state: FleetState(),
                          assets: AssetHandler(root: "/nonexistent"), pinner: ImagePinner(options: RegistryOptions(), workDirectory: "/nonexistent", logger: Logger(label: "t") { _ in log }),
                          tokens: try ReportTokens(secret: Array(repeating: 7, count: 32), allowUnauthenticated: true), publicURL: nil, logger: Logger(label: "t") { _ in log })
    }

    func report(_ server: BootServer, _ mac: String, _ body: String) -> Int {
        server.handle(HTTPServerRequest(method: "POST", path: "/v1/report/\(mac)", body: Array(body.utf8))).status
    }

    @Test func bogusMACsCannotCrowdOutARealHost() throws {
        let server = try server(unknown: "default")
        for i in 0..<(FleetState.maximumUnknownHosts + 500) {
            _ = report(server, MACAddress(bytes: [0x02, 0, UInt8(i >> 16 & 0xFF), UInt8(i >> 8 & 0xFF), UInt8(i & 0xFF), 9])!.description, #"{"stage": "booting"}"#)
        }
        #expect(report(server, "52:54:00:00:00:01", #"{"stage": "kexec"}"#) == 204)
        #expect(server.state.lastReport(MACAddress("52:54:00:00:00:01")!)?.last.stage == "kexec")
        // The oldest unknown ones were forgotten, the newest kept.
        #expect(server.state.lastReport(MACAddress(bytes: [0x02, 0, 0, 0, 0, 9])!) == nil)
        let all = server.state.reports(after: nil, limit: .max)
        #expect(all.count == FleetState.maximumUnknownHosts + 1)
        // Boot counters too: made-up MACs cannot take them from the listed host.
        for i in 0..<(FleetState.maximumUnknownHosts + 10) { server.state.countBoot(MACAddress(bytes: [0x06, 0, 0, UInt8(i >> 8 & 0xFF), UInt8(i & 0xFF), 1])!, known: false) }
        server.state.countBoot(MACAddress("52:54:00:00:00:01")!, known: true)
        #expect(server.state.metrics().contains("wyrcan_host_boots_total{mac=\"52:54:00:00:00:01\"} 1"))
        // With unknown: deny, an unknown MAC has nothing to report.
        #expect(report(try self.server(unknown: "deny"), "02:00:00:00:00:09", #"{"stage": "booting"}"#) == 404)
    }

    /// Each report carries the machine's Secure Boot and lockdown state: /v1/hosts shows the
    /// last one's, bounded like the other fields.
    @Test func aReportKeepsTheSecureBootState() throws {
        let server = try server(unknown: "deny")
        let mac = "52:54:00:00:00:01"
        #expect(report(server, mac, #"{"stage": "kexec", "security": "Secure Boot on, kernel lockdown integrity"}"#) == 204)
        guard case .bytes(let body) = server.handle(HTTPServerRequest(method: "GET", path: "/v1/hosts")).body else { Issue.record("no body"); return }
        let text = String(decoding: body, as: UTF8.self)
        #expect(text.contains(#""security" : "Secure Boot on, kernel lockdown integrity""#), "\(text)")
        #expect(report(server, mac, #"{"stage": "kexec", "security": "\#(String(repeating: "x", count: 5000))"}"#) == 204)
        #expect(server.state.lastReport(MACAddress(mac)!)?.last.security?.count == 200)
    }

    @Test func hostsArePagedInMACOrder() throws {
        let server = try server(unknown: "default")
        for i in 0..<25 { _ = report(server, "02:00:00:00:00:\(String(i, radix: 16).zeroPadded(to: 2))", #"{"stage": "network"}"#) }
        func page(_ query: [(name: String, value: String)]) throws -> [String: Any] {
            let response = server.handle(HTTPServerRequest(method: "GET", path: "/v1/hosts", query: query))
            guard case .bytes(let body) = response.body else { return [:] }
            return try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] ?? [:]
        }
        let first = try page([("limit", "10")])
        #expect((first["hosts"] as? [[String: Any]])?.count == 10 && first["next"] as? String == "02:00:00:00:00:09")
        let last = try page([("limit", "10"), ("after", "02:00:00:00:00:13")])
        let macs = (last["hosts"] as? [[String: Any]])?.compactMap { $0["mac"] as? String }
        #expect(macs == ["02:00:00:00:00:14", "02:00:00:00:00:15", "02:00:00:00:00:16", "02:00:00:00:00:17", "02:00:00:00:00:18", "52:54:00:00:00:01"])
        #expect(last["next"] == nil)
    }

    /// A report's detail with a newline and a terminal escape cannot forge a log line.
    @Test func reportDetailsAreEscapedInTheLog() throws {
        let log = Captured()
        let server = try server(unknown: "default", log: log)
        #expect(report(server, "52:54:00:00:00:01", #"{"stage": "failure", "detail": "x\n2026-12-07 info wyrcan-serve: forged\u001b[2J"}"#) == 204)
        #expect(log.lines.count == 1 && !log.lines[0].contains("\n") && !log.lines[0].contains("\u{1b}"), "\(log.lines)")
        #expect(log.lines[0].contains("x\\n2026-12-07") && log.lines[0].contains("\\u{1B}[2J"), "\(log.lines)")
    }
}
