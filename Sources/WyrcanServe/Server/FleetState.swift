import Foundation
import WyrcanChain
import WyrcanFleet

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
    /// Reporting MACs the inventory does not list (with `unknown: default` or `exit`): the
    /// oldest are forgotten past this many, so bogus reports cannot crowd out real hosts.
    static let maximumUnknownHosts = 10_000

    private let reports = Locked<[MACAddress: Report]>([:])
    /// Unknown MACs in the order they first reported (oldest first), and as a set.
    private let unknownOrder = Locked<(order: [MACAddress], members: Set<MACAddress>)>(([], []))
    /// Unknown MACs with a boot counter.
    private let unknownBoots = Locked(0)
    private let counters = Locked<[String: Int]>([:])
    private let boots = Locked<[String: Int]>([:])
    private let bytes = Locked<Int64>(0)

    func record(mac: MACAddress, known: Bool, stage: String, detail: String?, image: String?) {
        let isNew = reports.withLock { r in
            let isNew = r[mac] == nil
            r[mac] = Report(stage: stage, detail: detail, image: image, received: Self.now(), count: (r[mac]?.count ?? 0) + 1)
            return isNew
        }
        let evicted: [MACAddress] = unknownOrder.withLock { unknown in
            // A MAC the inventory lists now (after a reload) is no longer one to forget.
            if known {
                if unknown.members.remove(mac) != nil { unknown.order.removeAll { $0 == mac } }
                return []
            }
            guard isNew else { return [] }
            unknown.order.append(mac)
            unknown.members.insert(mac)
            guard unknown.order.count > Self.maximumUnknownHosts else { return [] }
            let excess = Array(unknown.order.prefix(unknown.order.count - Self.maximumUnknownHosts))
            unknown.order.removeFirst(excess.count)
            for m in excess { unknown.members.remove(m) }
            return excess
        }
        if !evicted.isEmpty { reports.withLock { r in for m in evicted { r[m] = nil } } }
    }

    func lastReport(_ mac: MACAddress) -> Report? { reports.withLock { $0[mac] } }

    /// Up to `limit` reports after `after`, in MAC order.
    func reports(after: MACAddress?, limit: Int) -> [MACAddress: Report] {
        reports.withLock { r in
            let keys = r.keys.filter { mac in after.map { mac > $0 } ?? true }.sorted().prefix(limit)
            return Dictionary(uniqueKeysWithValues: keys.map { ($0, r[$0]!) })
        }
    }

    func countRequest(endpoint: String, status: Int) {
        counters.withLock { $0["\(endpoint)|\(status)", default: 0] += 1 }
    }

    /// Boots counted per MAC: always for the hosts the inventory lists, for the first
    /// `maximumUnknownHosts` others only (made-up MACs cannot take the counters from real hosts).
    func countBoot(_ mac: MACAddress, known: Bool) {
        boots.withLock { b in
            if known || b[mac.description] != nil || unknownBoots.withLock({ $0 }) < Self.maximumUnknownHosts {
                if !known && b[mac.description] == nil { unknownBoots.withLock { $0 += 1 } }
                b[mac.description, default: 0] += 1
            }
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
        out += "# HELP wyrcan_hosts_reporting Hosts that sent a boot report.\n# TYPE wyrcan_hosts_reporting gauge\nwyrcan_hosts_reporting \(reports.withLock { $0.count })\n"
        return out
    }

    static func now() -> String {
        let f = ISO8601DateFormatter()
        return f.string(from: Date())
    }
}
