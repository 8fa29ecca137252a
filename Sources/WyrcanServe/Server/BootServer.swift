import Foundation
import Logging
import WyrcanChain
import WyrcanFleet
import WyrcanHTTP

/// The HTTP(S) endpoints of wyrcan-serve.
struct BootServer: Sendable {
    /// A host's configuration, or the answer to send instead.
    enum Lookup {
        /// `known`: the inventory lists the MAC (its boots are always counted).
        case found(HostBootConfig, known: Bool)
        case answer(HTTPServerResponse)
    }

    let store: InventoryStore
    let state: FleetState
    let assets: AssetHandler
    /// Images handed out by digest only (`pin:`, `verify:`).
    let pinner: ImagePinner
    /// Boot ids and the tokens that authenticate reports.
    let tokens: ReportTokens
    /// Base URL machines use to reach this server; nil derives it from the request's Host.
    let publicURL: String?
    /// The HTTPS listener, which serves `/v1/config` (secrets), when there is one.
    var tls: TLSListener? = nil
    let logger: Logger
    /// Rendered per-host answers, keyed by inventory generation, MAC, base URL and format:
    /// rendering runs the whole cmdline model, a lookup does not.
    let cache = RenderCache()

    func handle(_ request: HTTPServerRequest) -> HTTPServerResponse {
        let (endpoint, response) = route(request)
        state.countRequest(endpoint: endpoint, status: response.status)
        if case .file(_, _, let length) = response.body, request.method == "GET" { state.countBytes(length) }
        return response
    }

    private func route(_ r: HTTPServerRequest) -> (String, HTTPServerResponse) {
        let path = r.path
        if path == "/boot.ipxe" { return ("boot.ipxe", get(r) ?? bootstrap(r)) }
        if path == "/ipxe" { return ("ipxe", get(r) ?? hostScript(r, mac: r.queryValue("mac"))) }
        if path.hasPrefix("/ipxe/") { return ("ipxe", get(r) ?? hostScript(r, mac: String(path.dropFirst(6)))) }
        if path == "/cmdline" { return ("cmdline", get(r) ?? cmdline(r, mac: r.queryValue("mac"))) }
        if path.hasPrefix("/v1/boot/") { return ("v1/boot", get(r) ?? pixiecore(r, mac: String(path.dropFirst(9)))) }
        if path.hasPrefix("/v1/config/") { return ("v1/config", get(r) ?? hostConfig(r, mac: String(path.dropFirst(11)))) }
        if path == "/boot.efi" { return ("boot.efi", get(r) ?? bootEFI(r)) }
        if path.hasPrefix("/v1/report/") { return ("v1/report", report(r, mac: String(path.dropFirst(11)))) }
        if path == "/v1/hosts" { return ("v1/hosts", get(r) ?? hosts(r)) }
        if path.hasPrefix("/v1/hosts/") { return ("v1/hosts/mac", get(r) ?? host(r, mac: String(path.dropFirst(10)))) }
        if path.hasPrefix("/assets/") { return ("assets", assets.respond(r, relative: String(path.dropFirst(8)))) }
        if path == "/metrics" { return ("metrics", get(r) ?? .text(200, state.metrics() + pinner.metrics(), contentType: "text/plain; version=0.0.4")) }
        if path == "/healthz" { return ("healthz", .text(200, "ok\n")) }
        return ("other", .text(404, "not found: try /boot.ipxe, /ipxe?mac=MAC, /cmdline?mac=MAC, /v1/boot/MAC, /v1/config/MAC, /boot.efi, /v1/hosts, /v1/hosts/MAC, /assets/…, /metrics\n"))
    }

    private func get(_ r: HTTPServerRequest) -> HTTPServerResponse? {
        r.method == "GET" || r.method == "HEAD" ? nil : HTTPServerResponse(status: 405, headers: [("Allow", "GET, HEAD")], body: .bytes(Array("method not allowed\n".utf8)))
    }

    /// `http(s)://host[:port]` as the client addressed us, or `--public-url`. The Host header is
    /// checked strictly: it ends up in scripts.
    func baseURL(_ r: HTTPServerRequest) -> String? {
        if let publicURL { return publicURL }
        guard let host = Self.checkedHostHeader(r) else { return nil }
        return "\(r.isTLS ? "https" : "http")://\(host)"
    }

    /// The Host header, when it is a plain `host[:port]`.
    static func checkedHostHeader(_ r: HTTPServerRequest) -> String? {
        guard let host = r.header("Host"), !host.isEmpty, host.count < 256,
              host.unicodeScalars.allSatisfy({ ($0.properties.isASCIIHexDigit) || ($0.value >= 0x61 && $0.value <= 0x7A) || ($0.value >= 0x41 && $0.value <= 0x5A) || $0 == "." || $0 == "-" || $0 == ":" || $0 == "[" || $0 == "]" })
        else { return nil }
        return host
    }

    /// The host name (or address) the client used, without the port.
    static func requestHost(_ r: HTTPServerRequest) -> String? {
        guard let host = checkedHostHeader(r) else { return nil }
        if host.hasPrefix("["), let end = host.firstIndex(of: "]") { return String(host[...end]) }
        return String(host.split(separator: ":", maxSplits: 1).first ?? "")
    }

    private func config(_ mac: String?) -> Lookup {
        guard let text = mac, let mac = MACAddress(text) else {
            return .answer(.text(400, "a MAC address is required (mac=aa:bb:cc:dd:ee:ff)\n"))
        }
        let inventory = store.inventory
        guard let (profile, group) = inventory.profile(for: mac) else {
            if inventory.unknown == .exit {
                let p = Inventory.Profile(mode: .exit)
                if let c = try? HostBootConfig(mac: mac, group: nil, profile: p, inventory: inventory) { return .found(c, known: false) }
            }
            return .answer(.text(404, "\(mac) is not in the inventory\n"))
        }
        var served = profile
        switch pinner.images(for: profile, inventory: inventory) {
        case .success(let images): served.images = images
        case .failure(let unavailable):
            // (iPXE's bootstrap and Wyrcan both come back: the image may pass its next check.)
            return .answer(HTTPServerResponse(status: 503, headers: [("Retry-After", "10"), ("Content-Type", "text/plain; charset=utf-8")],
                                              body: .bytes(Array("\(unavailable.image) is not served: \(unavailable.problem)\n".utf8))))
        }
        do throws(RenderError) {
            return .found(try HostBootConfig(mac: mac, group: group, profile: served, inventory: inventory), known: inventory.hosts[mac] != nil)
        } catch {
            // Cannot happen for a loaded inventory (every host was rendered at load).
            logger.error("\(mac): \(error.field): \(error.reason)")
            return .answer(.text(500, "cannot render \(mac)\n"))
        }
    }

    private func reportURL(_ base: String, _ mac: MACAddress) -> String { ReportTokens.urlTemplate(base: base, mac: mac) }

    /// A rendered answer for one new boot: its id (which holds the time) and token filled in.
    /// Nothing is written per answer: the boot is stored with its first report.
    private func startBoot(_ text: String, mac: MACAddress) -> String {
        tokens.fill(text, mac: mac, boot: ReportTokens.newBoot())
    }

    private func bootstrap(_ r: HTTPServerRequest) -> HTTPServerResponse {
        guard let base = baseURL(r) else { return .text(400, "bad Host header\n") }
        return .text(200, IPXEScript.bootstrap(baseURL: base))
    }

    private func hostScript(_ r: HTTPServerRequest, mac: String?) -> HTTPServerResponse {
        guard let base = baseURL(r) else { return .text(400, "bad Host header\n") }
        let (inventory, storeGeneration) = store.snapshot
        let generation = "\(storeGeneration).\(pinner.version)"
        // (The HTTPS URL in a secret-holding host's script comes from the request: it is part of the key.)
        let endpoint = tls?.endpoint(for: r)?.url ?? ""
        if let text = mac, let m = MACAddress(text), let hit = cache.get("\(generation)|ipxe|\(m)|\(base)|\(endpoint)") {
            state.countBoot(m, known: inventory.hosts[m] != nil)
            return .text(200, startBoot(hit, mac: m))
        }
        switch config(mac) {
        case .answer(let response): return response
        case .found(let c, let known):
            let cmdline: String
            do throws(RenderError) { cmdline = c.mode == .boot ? try publicCmdline(c, r, base: base) : "" } catch {
                return .text(503, error.reason + "\n")
            }
            state.countBoot(c.mac, known: known, given: c.images)
            let script = IPXEScript.host(c, baseURL: base, cmdline: cmdline)
            cache.set("\(generation)|ipxe|\(c.mac)|\(base)|\(endpoint)", script)
            return .text(200, startBoot(script, mac: c.mac))
        }
    }

    private func cmdline(_ r: HTTPServerRequest, mac: String?) -> HTTPServerResponse {
        guard let base = baseURL(r) else { return .text(400, "bad Host header\n") }
        switch config(mac) {
        case .answer(let response): return response
        case .found(let c, _):
            guard c.mode == .boot else { return .text(404, "\(c.mac) boots from disk (mode: exit)\n") }
            do throws(RenderError) { return .text(200, startBoot(try publicCmdline(c, r, base: base), mac: c.mac) + "\n") } catch {
                return .text(503, error.reason + "\n")
            }
        }
    }

    /// Pixiecore API mode: `{"kernel": URL, "initrd": [URL], "cmdline": "…"}`.
    private func pixiecore(_ r: HTTPServerRequest, mac: String) -> HTTPServerResponse {
        guard let base = baseURL(r) else { return .text(400, "bad Host header\n") }
        switch config(mac) {
        case .answer(let response): return response
        case .found(let c, let known):
            guard c.mode == .boot, let release = c.release else { return .text(404, "\(c.mac) boots from disk (mode: exit)\n") }
            let text: String
            do throws(RenderError) { text = startBoot(try publicCmdline(c, r, base: base), mac: c.mac) } catch { return .text(503, error.reason + "\n") }
            state.countBoot(c.mac, known: known, given: c.images)
            let body: [String: Any] = ["kernel": "\(base)/assets/\(release.kernel)", "initrd": ["\(base)/assets/\(release.initrd)"], "cmdline": text]
            let data = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            return HTTPServerResponse(status: 200, headers: [("Content-Type", "application/json")], body: .bytes(Array(data)))
        }
    }

    /// The cmdline a script or plain answer may carry for `c` (see `HostBootConfig.publicCmdline`).
    private func publicCmdline(_ c: HostBootConfig, _ r: HTTPServerRequest, base: String) throws(RenderError) -> String {
        try c.publicCmdline(reportURL: reportURL(base, c.mac), endpoint: tls.flatMap { $0.endpoint(for: r) })
    }

    /// `/v1/config/MAC`: the host's full Wyrcan parameters, secrets included — over TLS only.
    private func hostConfig(_ r: HTTPServerRequest, mac: String) -> HTTPServerResponse {
        guard r.isTLS, let endpoint = tls?.endpoint(for: r) else {
            return .text(403, "/v1/config carries the host's secrets: ask the HTTPS listener (wyr.server=https://…)\n")
        }
        switch config(mac) {
        case .answer(let response): return response
        case .found(let c, let known):
            guard c.mode == .boot else { return .text(200, "wyr.mode=exit\n") }
            do throws(RenderError) {
                let text = startBoot(try c.cmdline(reportURL: reportURL(endpoint.url, c.mac)), mac: c.mac)
                state.countBoot(c.mac, known: known, given: c.images)
                return HTTPServerResponse(status: 200, headers: [("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store")],
                                          body: .bytes(Array((text + "\n").utf8)))
            } catch {
                return .text(500, "cannot render \(c.mac)\n")
            }
        }
    }

    /// `/boot.efi`: the default release's UKI, for a DHCP boot URL that names no host.
    private func bootEFI(_ r: HTTPServerRequest) -> HTTPServerResponse {
        let inventory = store.inventory
        guard let name = inventory.releaseName(for: inventory.defaults), let efi = inventory.releases[name]?.efi else {
            return .text(404, "no UKI: give the default release an efi: file in the inventory\n")
        }
        return assets.respond(r, relative: efi)
    }
}

/// The HTTPS listener as machines see it: where `wyr.server` points, and its key's pin.
struct TLSListener: Sendable {
    var port: UInt16
    var pin: String
    /// `--server-url`; nil derives `https://HOST:PORT` from the request's Host header.
    var publicURL: String?

    func endpoint(for request: HTTPServerRequest) -> ConfigEndpoint? {
        if let publicURL { return ConfigEndpoint(url: publicURL, pin: pin) }
        guard let host = BootServer.requestHost(request) else { return nil }
        return ConfigEndpoint(url: "https://\(host):\(port)", pin: pin)
    }
}

/// A bounded cache of rendered answers (cleared when full; entries of old generations just age out).
final class RenderCache: Sendable {
    private let entries = Locked<[String: String]>([:])
    static let capacity = 50_000

    func get(_ key: String) -> String? { entries.withLock { $0[key] } }

    func set(_ key: String, _ value: String) {
        entries.withLock {
            if $0.count >= Self.capacity { $0.removeAll(keepingCapacity: true) }
            $0[key] = value
        }
    }
}
