import WyrcanChain

/// Why a host's settings cannot be rendered into a bootable cmdline / iPXE script.
struct RenderError: Error, Sendable {
    var field: String
    var reason: String
}

/// Everything one machine gets: its Wyrcan release and its full Wyrcan cmdline, built with the
/// WyrcanChain cmdline model (so chains and quoting are right) and checked to pass unchanged
/// through iPXE's script parser.
struct HostBootConfig: Sendable {
    let mac: MACAddress
    let group: String?
    let mode: Inventory.Mode
    let release: Inventory.Release?
    let releaseName: String?
    /// The cmdline without `wyr.report` (added per request, since it names the server's URL).
    private let stages: [ChainStage]
    private let final: [String]

    init(mac: MACAddress, group: String?, profile: Inventory.Profile, inventory: Inventory) throws(RenderError) {
        self.mac = mac
        self.group = group
        self.mode = profile.mode ?? .boot
        guard mode == .boot else {
            release = nil; releaseName = nil; stages = []; final = []
            return
        }
        guard let name = profile.release ?? (inventory.releases.count == 1 ? inventory.releases.keys.first : nil) else {
            throw RenderError(field: "release", reason: "no release chosen (set release: NAME; defined: \(inventory.releases.keys.sorted().joined(separator: ", ")))")
        }
        guard let release = inventory.releases[name] else {
            throw RenderError(field: "release", reason: "no release named '\(name)'")
        }
        self.release = release
        self.releaseName = name
        guard let images = profile.images, !images.isEmpty else {
            throw RenderError(field: "image", reason: "no image to boot (set image: REGISTRY/IMAGE)")
        }
        for (i, image) in images.enumerated() {
            do { _ = try Reference(parsing: image) } catch {
                throw RenderError(field: images.count > 1 ? "image[\(i)]" : "image", reason: error.description)
            }
        }

        var common: [String] = []
        for (i, arg) in profile.kernelArgs.enumerated() {
            guard KernelCmdline.isSingleParameter(arg), !arg.hasPrefix("-") else {
                throw RenderError(field: "kernel_args[\(i)]", reason: "'\(arg)' is not one kernel parameter (balanced quotes, no spaces outside quotes, no leading '-')")
            }
            if let key = WyrcanArgs.wyrcanKey(KernelCmdline.tokenize(arg)[0].key), ["img", "arg", "depth"].contains(key) {
                throw RenderError(field: "kernel_args[\(i)]", reason: "use image: and args: instead of \(arg)")
            }
            common.append(arg)
        }
        for file in profile.net {
            for parameter in file.parameters {
                common.append(try Self.render(parameter.key, parameter.value, field: "net.\(file.name)"))
            }
        }
        for host in profile.insecure { common.append(try Self.render("wyr.insecure", host, field: "insecure")) }
        if let platform = profile.platform { common.append(try Self.render("wyr.platform", platform, field: "platform")) }
        if profile.rescue == true { common.append("wyr.rescue") }

        var last: [String] = []
        for s in profile.s3 { last.append(try Self.render("wyr.s3", s, field: "s3")) }
        for v in profile.volumes { last.append(try Self.render("wyr.volume", v, field: "volumes")) }

        var final: [String] = []
        for (i, arg) in profile.args.enumerated() {
            let tokens = KernelCmdline.tokenize(arg)
            guard !tokens.contains(where: \.unterminatedQuote), tokens.allSatisfy(\.isValidUTF8) else {
                throw RenderError(field: "args[\(i)]", reason: "'\(arg)' has an unbalanced double quote (or an unquoted character containing byte 0xA0)")
            }
            final += tokens.map(\.raw)
        }
        self.final = final
        self.stages = images.enumerated().map { i, image in
            ChainStage(image: image, parameters: common + (i == images.count - 1 ? last : []))
        }
        // Render once with a placeholder report URL: everything that can fail, fails at load.
        _ = try cmdline(reportURL: "http://127.0.0.1:1/v1/report/\(mac)")
    }

    static func render(_ key: String, _ value: String, field: String) throws(RenderError) -> String {
        guard let text = KernelCmdline.render(key: key, value: value) else {
            throw RenderError(field: field, reason: "'\(value)' cannot be carried on a kernel cmdline (it contains '\"')")
        }
        return text
    }

    /// The full Wyrcan cmdline; `reportURL` is added to every stage as `wyr.report=`.
    func cmdline(reportURL: String?) throws(RenderError) -> String {
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
        // …and to iPXE, which splits on whitespace, expands ${…}, and treats '#', '||', '&&', ';'.
        if let problem = IPXEScript.unsafeToken(in: text) {
            throw RenderError(field: "", reason: problem)
        }
        return text
    }
}
