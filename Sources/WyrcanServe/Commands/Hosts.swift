import ArgumentParser
import Foundation
import WyrcanChain

struct Hosts: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the fleet's hosts (or one host's boots) from the state store.",
        discussion: """
            Reads the state store the server writes (it may be serving meanwhile).

            EXAMPLES
              wyrcan-serve hosts --state /var/lib/wyrcan-serve/wyrcan-serve.db
              wyrcan-serve hosts --state wyrcan-serve.db --mac 52:54:00:12:34:56
            """)

    @Option(help: ArgumentHelp("The state store (wyrcan-serve --state).", valueName: "PATH"))
    var state: String = "wyrcan-serve.db"

    @Option(help: "One host: its boots, newest first, with each report's time since the boot's script was served.")
    var mac: String?

    @Option(help: "Boots shown with --mac.")
    var limit: Int = 10

    func run() throws {
        guard FileSystem.exists(state) else { throw ValidationError("--state \(state): no such file (wyrcan-serve creates it when it starts)") }
        let store: SQLiteStateReader
        do throws(StateError) { store = try SQLiteStateReader(path: state) } catch { throw ValidationError(error.description) }
        let host = try mac.map { text in
            guard let m = MACAddress(text) else { throw ValidationError("--mac \(text): not a MAC address") }
            return m
        }
        do throws(StateError) {
            if let m = host {
                printBoots(try store.boots(of: m, limit: max(1, limit)), of: m)
            } else {
                printHosts(try store.lastReports())
            }
        } catch {
            throw ValidationError(error.description)
        }
    }

    func printHosts(_ reports: [(report: StoredReport, count: Int)]) {
        let rows = reports.sorted { $0.report.mac < $1.report.mac }.map { r, count in
            [r.mac.description, r.stage, StoredReport.iso8601(r.received), String(count), r.image ?? "", Message.quoted(r.detail ?? "", limit: 60, quotes: false)]
        }
        print(Self.table(["MAC", "LAST STAGE", "AT", "REPORTS", "IMAGE", "DETAIL"], rows))
    }

    func printBoots(_ boots: [BootRecord], of mac: MACAddress) {
        print("\(mac): \(boots.count) boot(s)")
        for boot in boots {
            print("boot \(boot.boot.isEmpty ? "(no id)" : boot.boot)\(boot.served.map { ", served \(StoredReport.iso8601($0))" } ?? "")\(boot.images.isEmpty ? "" : ", images \(boot.images.joined(separator: " → "))")")
            let rows = boot.reports.map { r in
                [r.stage, boot.served.map { String(format: "+%.1f s", Double(r.received - $0) / 1000) } ?? StoredReport.iso8601(r.received), r.replica,
                 Message.quoted(r.detail ?? "", limit: 80, quotes: false)]
            }
            print(Self.table(["  STAGE", "WHEN", "REPLICA", "DETAIL"], rows.map { ["  " + $0[0]] + $0.dropFirst() }))
        }
    }

    /// Columns padded to their widest cell.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        let all = [header] + rows
        let widths = header.indices.map { i in all.map { $0[i].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { i, cell in i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
