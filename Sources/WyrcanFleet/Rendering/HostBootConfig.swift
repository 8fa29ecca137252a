import WyrcanChain

/// Why a host's settings cannot be rendered into a bootable cmdline / iPXE script.
public struct RenderError: Error, Sendable {
    public var field: String
    public var reason: String
}

/// Where machines fetch their secrets: this server's HTTPS listener and its public key's pin.
public struct ConfigEndpoint: Sendable, Equatable {
    /// `https://HOST:PORT` as machines reach it.
    public var url: String
    /// `sha256//BASE64` of the listener's public key.
    public var pin: String

    public init(url: String, pin: String) {
        self.url = url
        self.pin = pin
    }

    /// A pin of the right shape, where the listener's key is not at hand (checks, `render`).
    public static let placeholderPin = "sha256//" + String(repeating: "A", count: 43) + "="
}

/// Everything one machine gets: its Wyrcan release and its full Wyrcan cmdline, built with the
/// WyrcanChain cmdline model (so chains and quoting are right) and checked to pass unchanged
/// through iPXE's script parser. A host that holds secrets gets them only from `/v1/config`
/// over TLS; its scripts carry what it takes to reach that endpoint instead.
public struct HostBootConfig: Sendable {
    public let mac: MACAddress
    public let group: String?
    public let mode: Inventory.Mode
    public let release: Inventory.Release?
    public let releaseName: String?
    /// S3 keys or `secret: true` arguments: the full cmdline travels only over TLS.
    public let holdsSecrets: Bool
    /// The cmdline without `wyr.report` (added per request, since it names the server's URL).
    private let stages: [ChainStage]
    /// The images the host boots, in chain order (by digest where the server pins them).
    public var images: [String] { stages.map(\.image) }
    private let final: [String]
    /// What every stage needs to reach the network and the servers: Wyrcan's kernel arguments,
    /// network files, plain-HTTP registries, platform, rescue.
    private let reach: [String]

    public init(mac: MACAddress, group: String?, profile: Inventory.Profile, inventory: Inventory) throws(RenderError) {
        self.mac = mac
        self.group = group
        self.mode = profile.mode ?? .boot
        holdsSecrets = Inventory.holdsSecrets(profile)
        guard mode == .boot else {
            release = nil; releaseName = nil; stages = []; final = []; reach = []
            return
        }
        (releaseName, release) = try Self.release(profile, inventory)
        let images = try Self.images(profile)
        let reach = try Self.reachParameters(profile)
        self.reach = reach
        var last: [String] = []
        for s in profile.s3 { last.append(try Self.render("wyr.s3", s, field: "s3")) }
        for v in profile.volumes { last.append(try Self.render("wyr.volume", v, field: "volumes")) }
        final = try Self.finalParameters(profile)
        stages = images.enumerated().map { i, image in
            ChainStage(image: image, parameters: reach + (i == images.count - 1 ? last : []))
        }
    }

    /// Renders both cmdlines with placeholder URLs: everything that can fail at serving time
    /// fails here (the loader calls it for every host, so a loaded inventory always renders).
    public func validate() throws(RenderError) {
        guard mode == .boot else { return }
        let report = "http://127.0.0.1:1/v1/report/\(mac)"
        _ = try cmdline(reportURL: report)
        _ = try publicCmdline(reportURL: report, endpoint: ConfigEndpoint(url: "https://127.0.0.1:1", pin: ConfigEndpoint.placeholderPin))
    }

    private static func release(_ profile: Inventory.Profile, _ inventory: Inventory) throws(RenderError) -> (String, Inventory.Release) {
        guard let name = inventory.releaseName(for: profile) else {
            throw RenderError(field: "release", reason: "no release chosen (set release: NAME; defined: \(inventory.releases.keys.sorted().joined(separator: ", ")))")
        }
        guard let release = inventory.releases[name] else {
            throw RenderError(field: "release", reason: "no release named \(Message.quoted(name))")
        }
        return (name, release)
    }

    private static func images(_ profile: Inventory.Profile) throws(RenderError) -> [String] {
        guard let images = profile.images, !images.isEmpty else {
            throw RenderError(field: "image", reason: "no image to boot (set image: REGISTRY/IMAGE)")
        }
        for (i, image) in images.enumerated() {
            do { _ = try Reference(parsing: image) } catch {
                throw RenderError(field: images.count > 1 ? "image[\(i)]" : "image", reason: error.description)
            }
        }
        return images
    }

    private static func reachParameters(_ profile: Inventory.Profile) throws(RenderError) -> [String] {
        var out: [String] = []
        for (i, arg) in profile.kernelArgs.enumerated() {
            guard KernelCmdline.isSingleParameter(arg), !arg.hasPrefix("-") else {
                throw RenderError(field: "kernel_args[\(i)]", reason: "\(Message.quoted(arg)) is not one kernel parameter (balanced quotes, no spaces outside quotes, no leading '-')")
            }
            let key = KernelCmdline.tokenize(arg)[0].key
            if let name = WyrcanArgs.wyrcanKey(key) ?? WyrcanArgs.boot2ContainerKeys[key],
               ["img", "arg", "depth", "server", "server_pin", "s3", "volume"].contains(name) {
                // (S3 keys there would escape the secret handling: they go in s3:, volumes in volumes:.)
                let shown = name == "s3" ? key + "=…" : Message.quoted(arg)
                throw RenderError(field: "kernel_args[\(i)]", reason: "use image:, args:, s3: and volumes: instead of \(shown)")
            }
            out.append(arg)
        }
        for file in profile.net {
            for parameter in file.parameters {
                out.append(try render(parameter.key, parameter.value, field: "net.\(file.name)"))
            }
        }
        for host in profile.insecure { out.append(try render("wyr.insecure", host, field: "insecure")) }
        if let platform = profile.platform { out.append(try render("wyr.platform", platform, field: "platform")) }
        if profile.rescue == true { out.append("wyr.rescue") }
        return out
    }

    private static func finalParameters(_ profile: Inventory.Profile) throws(RenderError) -> [String] {
        var out: [String] = []
        for (i, arg) in profile.args.enumerated() {
            if let problem = arg.problem { throw RenderError(field: "args[\(i)]", reason: problem) }
            out += KernelCmdline.tokenize(arg.text).map(\.raw)
        }
        return out
    }

    public static func render(_ key: String, _ value: String, field: String) throws(RenderError) -> String {
        guard let text = KernelCmdline.render(key: key, value: value) else {
            throw RenderError(field: field, reason: "\(Message.quoted(value)) cannot be carried on a kernel cmdline (it contains '\"')")
        }
        return text
    }

    /// The full Wyrcan cmdline, secrets included (for `/v1/config` over TLS); `reportURL` is
    /// added to every stage as `wyr.report=`.
    public func cmdline(reportURL: String?) throws(RenderError) -> String {
        let report = reportURL.map { ["wyr.report=\($0)"] } ?? []
        let chain = Chain(stages: stages.map { ChainStage(image: $0.image, parameters: $0.parameters + report) }, final: final)
        let text: String
        do { text = try chain.encode() } catch { throw RenderError(field: "", reason: error.description) }
        // The text must mean the same to Wyrcan…
        do {
            _ = try BootPlan(cmdline: text)
            guard try Chain(decoding: text).final == final else {
                throw RenderError(field: "args", reason: "the arguments do not survive the chain")
            }
        } catch let e as RenderError { throw e } catch {
            throw RenderError(field: "", reason: "\(error)")
        }
        try Self.checkForIPXE(text)
        return text
    }

    /// The cmdline for a script or a plain-HTTP answer: the full one, or — for a host that
    /// holds secrets — what it takes to reach `endpoint` (network, trust), which gives the rest
    /// over TLS. Nil endpoint for such a host: it cannot be served (no HTTPS listener).
    public func publicCmdline(reportURL: String?, endpoint: ConfigEndpoint?) throws(RenderError) -> String {
        guard holdsSecrets else { return try cmdline(reportURL: reportURL) }
        guard let endpoint else {
            throw RenderError(field: "", reason: "\(mac) holds secrets (s3 or secret: arguments), which travel only over TLS: serve with --https too")
        }
        let text = (reach + ["wyr.server=\(endpoint.url)", "wyr.server_pin=\(endpoint.pin)"] + (reportURL.map { ["wyr.report=\($0)"] } ?? []))
            .joined(separator: " ")
        do { _ = try BootPlan(cmdline: text) } catch { throw RenderError(field: "", reason: error.description) }
        try Self.checkForIPXE(text)
        return text
    }

    /// iPXE splits on whitespace, expands ${…}, and treats '#', '||', '&&', ';' in a script.
    private static func checkForIPXE(_ text: String) throws(RenderError) {
        if let problem = IPXEScript.unsafeToken(in: text) { throw RenderError(field: "", reason: problem) }
    }
}
