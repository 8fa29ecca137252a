import Foundation
import WyrcanChain
import WyrcanFleet
import WyrcanHTTP

/// Boot reports in, the fleet's view out — bounded, so that no machine on the boot network can
/// fill the server's memory or slow the boot path: reports only for MACs the inventory can boot,
/// at most `FleetState.maximumUnknownHosts` of them not listed in it, and `/v1/hosts` by pages.
extension BootServer {
    /// The most hosts one `/v1/hosts` answer lists (`?limit=`), and the default.
    static let hostsPageLimit = 5000
    static let hostsPageDefault = 500

    func report(_ r: HTTPServerRequest, mac text: String) -> HTTPServerResponse {
        guard r.method == "POST" else { return HTTPServerResponse(status: 405, headers: [("Allow", "POST")], body: .bytes(Array("use POST\n".utf8))) }
        guard let mac = MACAddress(text) else { return .text(400, "bad MAC address\n") }
        let inventory = store.inventory
        let known = inventory.hosts[mac] != nil
        // A MAC the inventory does not boot has nothing to report.
        guard known || inventory.unknown != .deny else { return .text(404, "\(mac) is not in the inventory\n") }
        guard let object = try? JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any],
              let stage = object["stage"] as? String, FleetState.stages.contains(stage)
        else {
            return .text(400, "body must be JSON {\"stage\": \(FleetState.stages.sorted().joined(separator: "|")), \"detail\": \"…\"}\n")
        }
        let boot: String
        switch tokens.check(mac: mac, boot: r.queryValue("boot"), token: r.queryValue("token")) {
        case .success(let id): boot = id
        case .failure(let refusal):
            state.countRejectedReport()
            return .text(403, "\(mac): report refused: \(refusal.reason)\n")
        }
        let detail = (object["detail"] as? String).map { String($0.prefix(2000)) }
        let image = (object["image"] as? String).map { String($0.prefix(512)) }
        let security = (object["security"] as? String).map { String($0.prefix(200)) }
        do throws(StateError) {
            try state.record(mac: mac, known: known, boot: boot, stage: stage, detail: detail, image: image, security: security)
        } catch {
            logger.error("\(mac): report not stored: \(error.description)")
            return HTTPServerResponse(status: 503, headers: [("Retry-After", "5")], body: .bytes(Array("report not stored: \(error.description)\n".utf8)))
        }
        // (A report's text is the reporter's: escaped, so it cannot forge log lines.)
        logger.info("\(mac): \(stage)\(detail.map { ": " + Message.quoted($0, limit: 300, quotes: false) } ?? "")")
        return .text(204, "")
    }

    /// `GET /v1/hosts[?limit=N][&after=MAC]`: hosts in MAC order, a page at a time; `next` names
    /// the `after` of the next page.
    func hosts(_ r: HTTPServerRequest) -> HTTPServerResponse {
        let limit = r.queryValue("limit").flatMap { Int($0) }.map { min(max($0, 1), Self.hostsPageLimit) } ?? Self.hostsPageDefault
        let after = r.queryValue("after").flatMap(MACAddress.init)
        if r.queryValue("after") != nil && after == nil { return .text(400, "after= must be a MAC address\n") }
        let inventory = store.inventory
        let reports = state.reports(after: after, limit: limit)
        var macs = Set(reports.keys)
        macs.formUnion(inventory.hosts.keys.filter { mac in after.map { mac > $0 } ?? true })
        let page = macs.sorted().prefix(limit)
        let list = page.map { mac in hostEntry(mac, inventory: inventory, report: reports[mac]) }
        var document: [String: Any] = ["hosts": list]
        if page.count == limit, let last = page.last { document["next"] = last.description }
        let data = (try? JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])) ?? Data()
        return HTTPServerResponse(status: 200, headers: [("Content-Type", "application/json")], body: .bytes(Array(data)))
    }

    func hostEntry(_ mac: MACAddress, inventory: Inventory, report: FleetState.Report?) -> [String: Any] {
        var entry: [String: Any] = ["mac": mac.description, "known": inventory.hosts[mac] != nil]
        if let group = inventory.hosts[mac]?.group { entry["group"] = group }
        if let (p, _) = inventory.profile(for: mac) {
            entry["image"] = p.images?.last ?? NSNull()
            entry["mode"] = (p.mode ?? .boot).rawValue
            let pins = pinner.status(for: p, inventory: inventory)
            if !pins.isEmpty { entry["pins"] = pins.map(Self.pinEntry) }
        }
        if let given = state.given(mac) { entry["given"] = given }
        if let report {
            let r = report.last
            var last: [String: Any] = ["stage": r.stage, "received": StoredReport.iso8601(r.received), "count": report.count]
            if let d = r.detail { last["detail"] = d }
            if let i = r.image { last["image"] = i }
            if let s = r.security { last["security"] = s }
            entry["lastReport"] = last
        }
        return entry
    }

    /// `GET /v1/hosts/MAC[?limit=N]`: the host's entry and its last boots (newest first), each
    /// with its reports and their seconds since the boot's script or config was served.
    func host(_ r: HTTPServerRequest, mac text: String) -> HTTPServerResponse {
        guard let mac = MACAddress(text) else { return .text(400, "bad MAC address\n") }
        let inventory = store.inventory
        var entry = hostEntry(mac, inventory: inventory, report: state.lastReport(mac))
        let limit = r.queryValue("limit").flatMap { Int($0) }.map { min(max($0, 1), 500) } ?? 50
        do throws(StateError) {
            entry["boots"] = try (state.store?.boots(of: mac, limit: limit) ?? []).map(Self.bootEntry)
        } catch {
            return .text(503, "\(error.description)\n")
        }
        let data = (try? JSONSerialization.data(withJSONObject: entry, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])) ?? Data()
        return HTTPServerResponse(status: 200, headers: [("Content-Type", "application/json")], body: .bytes(Array(data)))
    }

    static func bootEntry(_ boot: BootRecord) -> [String: Any] {
        var entry: [String: Any] = ["boot": boot.boot, "images": boot.images]
        if let served = boot.served {
            entry["served"] = StoredReport.iso8601(served)
            // Script served → the booted system's `up`.
            if let up = boot.reports.first(where: { $0.stage == "up" }) { entry["duration"] = Double(up.received - served) / 1000 }
        }
        entry["reports"] = boot.reports.map { report in
            var item: [String: Any] = ["stage": report.stage, "received": StoredReport.iso8601(report.received), "replica": report.replica]
            if let served = boot.served { item["seconds"] = Double(report.received - served) / 1000 }
            if let d = report.detail { item["detail"] = d }
            if let i = report.image { item["image"] = i }
            return item
        }
        return entry
    }

    /// How one pinned image stands: what is served now, and why a newer one is not.
    static func pinEntry(_ request: PinRequest, _ pin: Pin?) -> [String: Any] {
        var entry: [String: Any] = ["image": request.image, "platform": request.platform, "state": (pin?.state ?? .unresolved).rawValue]
        if let digest = pin?.digest { entry["digest"] = digest.description }
        if let key = pin?.signedBy { entry["signedBy"] = key }
        if let problem = pin?.problem { entry["problem"] = problem }
        return entry
    }
}
