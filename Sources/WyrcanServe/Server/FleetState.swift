import Foundation
import WyrcanChain
import WyrcanFleet

/// Boot reports from Wyrcan stages (`wyr.report=`) and request metrics.
final class FleetState: Sendable {
    /// A host's last report, and how many it has sent (stored).
    struct Report: Sendable {
        var last: StoredReport
        var count: Int
    }

    static let stages: Set<String> = ["booting", "network", "pulling", "converted", "kexec", "exit", "failure", "efi", "up"]
    /// Upper bounds (seconds) of the boot-duration histogram: script served → `up`.
    static let durationBuckets: [Double] = [15, 30, 60, 120, 300, 600, 1200, 3600]
    /// Reporting MACs the inventory does not list (with `unknown: default` or `exit`): the
    /// oldest are forgotten past this many, so bogus reports cannot crowd out real hosts.
    static let maximumUnknownHosts = 10_000

    /// The last report per MAC, and the MACs the inventory does not list in the order they
    /// first reported (oldest first), as a list and as a set: one lock, one step per report.
    private struct Reports {
        var last: [MACAddress: Report] = [:]
        var unknownOrder: [MACAddress] = []
        var unknown: Set<MACAddress> = []
    }
    private let reports = Locked(Reports())
    /// Where reports are kept across restarts (nil: in memory only, for `render`).
    let store: (any StateStore)?
    /// This server's name in stored reports (several replicas may share a store).
    let replica: String
    /// Reports refused for a missing or wrong token.
    private let rejectedReports = Locked<Int>(0)
    /// Boot durations (script served → `up`): counts per bucket (the last: above them all), sum.
    private let durations = Locked<(counts: [Int], sum: Double)>((Array(repeating: 0, count: FleetState.durationBuckets.count + 1), 0))

    init(store: (any StateStore)? = nil, replica: String = ProcessInfo.processInfo.hostName) {
        self.store = store
        self.replica = replica
    }

    /// Loads each host's last report from the store (at start).
    func restore(known: (MACAddress) -> Bool) throws(StateError) {
        guard let store else { return }
        for (r, count) in try store.lastReports() { remember(r.mac, known: known(r.mac), Report(last: r, count: count)) }
    }
    private let counters = Locked<[String: Int]>([:])
    /// Boot counters per MAC, how many of them are for MACs the inventory does not list, and
    /// the images each was last handed.
    private let boots = Locked<(counts: [String: Int], unknown: Int, given: [MACAddress: [String]])>(([:], 0, [:]))
    private let bytes = Locked<Int64>(0)

    /// Stores a report (durably, with a store) and keeps it as the host's last.
    func record(mac: MACAddress, known: Bool, boot: String, stage: String, detail: String?, image: String?, security: String?) throws(StateError) {
        let received = StoredReport.now()
        let report = StoredReport(mac: mac, boot: boot, stage: stage, detail: detail, image: image, security: security, received: received, replica: replica)
        try store?.append(report, served: ReportTokens.servedTime(of: boot), images: given(mac) ?? [])
        if stage == "up", let served = ReportTokens.servedTime(of: boot), received >= served {
            let seconds = Double(received - served) / 1000
            durations.withLock { d in
                d.counts[Self.durationBuckets.firstIndex { seconds <= $0 } ?? Self.durationBuckets.count] += 1
                d.sum += seconds
            }
        }
        remember(mac, known: known, Report(last: report, count: 1), adding: true)
    }

    func countRejectedReport() { rejectedReports.withLock { $0 += 1 } }

    /// Keeps `report` as `mac`'s last (`adding`: its count added to the host's, under the same
    /// lock), forgetting the oldest unlisted MACs past the limit.
    private func remember(_ mac: MACAddress, known: Bool, _ report: Report, adding: Bool = false) {
        reports.withLock { r in
            let isNew = r.last[mac] == nil
            var report = report
            if adding { report.count += r.last[mac]?.count ?? 0 }
            r.last[mac] = report
            // A MAC the inventory lists now (after a reload) is no longer one to forget.
            if known {
                if r.unknown.remove(mac) != nil { r.unknownOrder.removeAll { $0 == mac } }
                return
            }
            guard isNew else { return }
            r.unknownOrder.append(mac)
            r.unknown.insert(mac)
            guard r.unknownOrder.count > Self.maximumUnknownHosts else { return }
            let excess = r.unknownOrder.prefix(r.unknownOrder.count - Self.maximumUnknownHosts)
            for m in excess {
                r.unknown.remove(m)
                r.last[m] = nil
            }
            r.unknownOrder.removeFirst(excess.count)
        }
    }

    func lastReport(_ mac: MACAddress) -> Report? { reports.withLock { $0.last[mac] } }

    var reportingHosts: Int { reports.withLock { $0.last.count } }

    /// Up to `limit` reports after `after`, in MAC order.
    func reports(after: MACAddress?, limit: Int) -> [MACAddress: Report] {
        reports.withLock { r in
            let keys = r.last.keys.filter { mac in after.map { mac > $0 } ?? true }.sorted().prefix(limit)
            return Dictionary(uniqueKeysWithValues: keys.map { ($0, r.last[$0]!) })
        }
    }

    func countRequest(endpoint: String, status: Int) {
        counters.withLock { $0["\(endpoint)|\(status)", default: 0] += 1 }
    }

    /// Boots counted per MAC: always for the hosts the inventory lists, for the first
    /// `maximumUnknownHosts` others only (made-up MACs cannot take the counters from real hosts).
    /// `given`: the images the host was handed (nil: the same as last time, a cached answer).
    func countBoot(_ mac: MACAddress, known: Bool, given: [String]? = nil) {
        boots.withLock { b in
            let counted = b.counts[mac.description] != nil
            guard known || counted || b.unknown < Self.maximumUnknownHosts else { return }
            if !known && !counted { b.unknown += 1 }
            b.counts[mac.description, default: 0] += 1
            if let given { b.given[mac] = given }
        }
    }

    /// The images `mac` was last handed, in chain order.
    func given(_ mac: MACAddress) -> [String]? { boots.withLock { $0.given[mac] } }

    func countBytes(_ n: Int64) { bytes.withLock { $0 += n } }

    /// Prometheus text exposition format.
    func metrics() -> String {
        var out = "# HELP wyrcan_http_requests_total HTTP requests by endpoint and status.\n# TYPE wyrcan_http_requests_total counter\n"
        for (key, value) in counters.withLock({ $0 }).sorted(by: { $0.key < $1.key }) {
            let parts = key.split(separator: "|")
            out += "wyrcan_http_requests_total{endpoint=\"\(parts[0])\",status=\"\(parts[1])\"} \(value)\n"
        }
        out += "# HELP wyrcan_http_response_bytes_total Bytes of asset bodies served.\n# TYPE wyrcan_http_response_bytes_total counter\n"
        out += "wyrcan_http_response_bytes_total \(bytes.withLock { $0 })\n"
        out += "# HELP wyrcan_host_boots_total Per-host boot scripts served, by MAC.\n# TYPE wyrcan_host_boots_total counter\n"
        for (mac, n) in boots.withLock({ $0.counts }).sorted(by: { $0.key < $1.key }) {
            out += "wyrcan_host_boots_total{mac=\"\(mac)\"} \(n)\n"
        }
        out += "# HELP wyrcan_hosts_reporting Hosts that sent a boot report.\n# TYPE wyrcan_hosts_reporting gauge\nwyrcan_hosts_reporting \(reports.withLock { $0.last.count })\n"
        let (counts, sum) = durations.withLock { ($0.counts, $0.sum) }
        out += "# HELP wyrcan_boot_duration_seconds Boots from the script or config served to the booted system's up report.\n# TYPE wyrcan_boot_duration_seconds histogram\n"
        var cumulative = 0
        for (i, bound) in Self.durationBuckets.enumerated() {
            cumulative += counts[i]
            out += "wyrcan_boot_duration_seconds_bucket{le=\"\(Int(bound))\"} \(cumulative)\n"
        }
        cumulative += counts[Self.durationBuckets.count]
        out += "wyrcan_boot_duration_seconds_bucket{le=\"+Inf\"} \(cumulative)\nwyrcan_boot_duration_seconds_sum \(sum)\nwyrcan_boot_duration_seconds_count \(cumulative)\n"
        out += "# HELP wyrcan_reports_rejected_total Reports refused (403) for a missing or wrong token.\n# TYPE wyrcan_reports_rejected_total counter\nwyrcan_reports_rejected_total \(rejectedReports.withLock { $0 })\n"
        return out
    }

}
