import Foundation
import WyrcanChain

/// Boot reports from Wyrcan stages (`wyr.report=`) and request metrics.
final class FleetState: Sendable {
    struct Report: Codable, Sendable {
        var stage: String
        var detail: String?
        var image: String?
        var received: String
        var count: Int
    }

    static let stages: Set<String> = ["booting", "network", "pulling", "converted", "kexec", "exit", "failure", "efi"]
    static let maximumHosts = 100_000

    private let reports = Locked<[String: Report]>([:])
    private let counters = Locked<[String: Int]>([:])
    private let boots = Locked<[String: Int]>([:])
    private let bytes = Locked<Int64>(0)

    func record(mac: MACAddress, stage: String, detail: String?, image: String?) -> Bool {
        reports.withLock { r in
            guard r.count < Self.maximumHosts || r[mac.description] != nil else { return false }
            let count = (r[mac.description]?.count ?? 0) + 1
            r[mac.description] = Report(stage: stage, detail: detail, image: image, received: Self.now(), count: count)
            return true
        }
    }

    func lastReport(_ mac: MACAddress) -> Report? { reports.withLock { $0[mac.description] } }
    var allReports: [String: Report] { reports.withLock { $0 } }

    func countRequest(endpoint: String, status: Int) {
        counters.withLock { $0["\(endpoint)|\(status)", default: 0] += 1 }
    }

    func countBoot(_ mac: MACAddress) {
        boots.withLock { b in
            if b.count < Self.maximumHosts || b[mac.description] != nil { b[mac.description, default: 0] += 1 }
        }
    }

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
        for (mac, n) in boots.withLock({ $0 }).sorted(by: { $0.key < $1.key }) {
            out += "wyrcan_host_boots_total{mac=\"\(mac)\"} \(n)\n"
        }
        let r = reports.withLock { $0 }
        out += "# HELP wyrcan_hosts_reporting Hosts that sent a boot report.\n# TYPE wyrcan_hosts_reporting gauge\nwyrcan_hosts_reporting \(r.count)\n"
        return out
    }

    static func now() -> String {
        let f = ISO8601DateFormatter()
        return f.string(from: Date())
    }
}
