import Foundation
import WyrcanChain

/// One boot report as kept: which host, which boot (the id its script or config carried; empty
/// for a report without one), what it said, when, and which server took it.
struct StoredReport: Sendable, Equatable {
    var mac: MACAddress
    var boot: String
    var stage: String
    var detail: String?
    var image: String?
    var security: String?
    /// Milliseconds since 1970.
    var received: Int64
    var replica: String
}

/// One boot of a host: when its script or config was served, the images it was given, and its
/// reports in order.
struct BootRecord: Sendable {
    var boot: String
    var served: Int64?
    var images: [String]
    var reports: [StoredReport]
}

/// Where wyrcan-serve keeps the fleet's state across restarts: every report, each host's boots,
/// the secret its report tokens are made with.
protocol StateStore: Sendable {
    /// Stores a report, and its boot if it is the first of it (`served`: when its script or
    /// config was served; `images`: what the host was given). When this returns the report
    /// survives a `kill -9` of the server.
    func append(_ report: StoredReport, served: Int64?, images: [String]) throws(StateError)
    /// Each host's last report and how many it has stored.
    func lastReports() throws(StateError) -> [(report: StoredReport, count: Int)]
    /// A host's most recent boots, newest first.
    func boots(of mac: MACAddress, limit: Int) throws(StateError) -> [BootRecord]
    /// The key report tokens are made with (created once, kept in the store).
    func reportSecret() throws(StateError) -> [UInt8]
}

extension StoredReport {
    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    static func iso8601(_ milliseconds: Int64) -> String {
        ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
    }
}
