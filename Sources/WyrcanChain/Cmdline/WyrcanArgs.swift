/// Everything a Wyrcan stage reads from its kernel cmdline.
///
/// Both prefixes of the original are accepted (`wyr.` and `wyrcan.`). Parameters that are not
/// Wyrcan's (`console=ttyS0`, `quiet`, …) configure Wyrcan's own kernel and, as in the original,
/// are not passed to the next kernel: only `wyr.arg` values are. Parsing stops at a bare `--`, after
/// which the kernel hands everything to init.
public struct WyrcanArgs: Sendable, Equatable {
    public enum EFIAction: String, Sendable, Codable {
        case write, clear
    }

    /// What this machine boots: the image (`boot`, the default), or its local disk (`exit`: the
    /// fleet server's `mode: exit`, carried out by setting EFI `BootNext` and rebooting).
    public enum Mode: String, Sendable, Codable {
        case boot, exit
    }

    /// `wyr.img`: the image to boot (the last one given wins, as in the original).
    public var image: Reference?
    /// `wyr.arg`: values in cmdline order, as the kernel delivered them (before nesting decode).
    public var args: [String] = []
    /// `wyr.net.*`
    public var network = NetworkConfig()
    /// `wyr.efi=write|clear`
    public var efi: EFIAction?
    /// `wyr.insecure=HOST[:PORT]`: registries reached over plain HTTP.
    public var insecureRegistries: [String] = []
    /// `wyr.platform=OS/ARCH[/VARIANT]`: which image of an index to boot.
    public var platform: Platform?
    /// `wyr.rescue`: open a shell on the console after the last failure instead of rebooting.
    public var rescue = false
    /// `wyr.report=URL`: where to POST boot progress (wyrcan-serve's `/v1/report/<mac>`).
    public var reportURL: String?
    /// `wyr.volume=…`
    public var volumes: [VolumeSpec] = []
    /// `wyr.s3=…`
    public var s3: [S3Alias] = []
    /// `wyr.cache=auto|/dev/DISK[,format]`: the local disk the volumes live on.
    public var cache: CacheSpec?
    /// `wyr.extra_args_url=URL`: more `wyr.*` parameters (e.g. S3 secrets) fetched after network-up,
    /// so they stay out of the booted system's `/proc/cmdline`.
    public var extraArgsURL: String?
    /// `wyr.server=URL`: the fleet server whose `URL/v1/config/MAC` gives this machine's
    /// parameters (secrets included) over TLS after network-up.
    public var server: String?
    /// `wyr.server_pin=sha256//BASE64[;sha256//BASE64…]`: the config server's public key(s), for
    /// a cmdline that does not come with the CA baked into the initramfs.
    public var serverPin: String?
    /// `wyr.mode=boot|exit`
    public var mode: Mode = .boot
    /// `wyr.verify=NAME[,NAME…]`: the image must be signed by one of these keys, which must be
    /// baked into this Wyrcan's initramfs (`SignaturePolicy`).
    public var verifyKeys: [String] = []
    /// `wyr.depth=N`: how many Wyrcan stages ran before this one (Wyrcan sets it when chaining).
    public var depth = 0
    /// Parameters that are not Wyrcan's: they configure this stage's kernel only.
    public var kernelParameters: [KernelParameter] = []
    /// `wyr.*` keys this version does not know (kept so `plan` can warn about typos).
    public var unknownKeys: [String] = []

    public init() {}

    /// The prefixes the original Wyrcan accepts.
    public static let prefixes = ["wyr.", "wyrcan."]
    /// The cap on chained Wyrcan stages, so a misconfigured chain cannot reboot forever.
    public static let maximumChainDepth = 8

    /// boot2container's spelling of the keys Wyrcan shares with it.
    public static let boot2ContainerKeys = ["b2c.volume": "volume", "b2c.minio": "s3"]

    /// The key without its `wyr.` / `wyrcan.` prefix, or nil for a parameter that is not Wyrcan's.
    public static func wyrcanKey(_ key: String) -> String? {
        for prefix in prefixes where key.hasPrefix(prefix) {
            return String(key.dropFirst(prefix.count))
        }
        return nil
    }

    /// Parses a whole cmdline (e.g. the contents of `/proc/cmdline`).
    public init(parsing cmdline: String) throws(CmdlineError) {
        try self.init(parameters: KernelCmdline.tokenize(cmdline))
    }

    public init(parameters: [KernelParameter]) throws(CmdlineError) {
        for parameter in parameters {
            if parameter.value == nil && parameter.key == "--" { break }
            if let name = Self.wyrcanKey(parameter.key) {
                try apply(name: name, parameter: parameter)
            } else if let name = Self.boot2ContainerKeys[parameter.key] {
                try apply(name: name, parameter: parameter)
            } else {
                kernelParameters.append(parameter)
            }
        }
        // Aliases may arrive later from wyr.server or wyr.extra_args_url; the agent checks again
        // after merging.
        if extraArgsURL == nil && server == nil { try checkVolumes() }
    }

    /// Adds parameters fetched after network-up from `wyr.server`: for single-valued keys the
    /// fetched value wins (image, platform, report, cache; `exit` mode and rescue when given);
    /// lists grow — `wyr.arg` values after the cmdline's own, registries, volumes and S3 aliases
    /// (the fetched one replaces one of the same name) — and network files are replaced by name
    /// (the network is up by then: they go on to later stages). A fetched answer cannot ask for
    /// another fetch, set the chain depth or write EFI: its `wyr.server`, `wyr.server_pin`,
    /// `wyr.extra_args_url`, `wyr.depth` and `wyr.efi` are ignored.
    public mutating func merge(fetched: WyrcanArgs) throws(CmdlineError) {
        try merge(fetched: fetched, trusted: true)
    }

    /// `trusted`: the answer of a server Wyrcan verified (`wyr.server`), which may set anything
    /// above. Otherwise (`wyr.extra_args_url`, which may be plain HTTP) only what it always
    /// could: S3 aliases, volumes not already named, the cache disk and more `wyr.arg` values.
    public mutating func merge(fetched: WyrcanArgs, trusted: Bool) throws(CmdlineError) {
        for alias in fetched.s3 { setS3(alias) }
        for volume in fetched.volumes {
            if trusted {
                volumes.removeAll { $0.name == volume.name }
            } else if volumes.contains(where: { $0.name == volume.name }) {
                continue
            }
            volumes.append(volume)
        }
        if let cache = fetched.cache { self.cache = cache }
        args += fetched.args
        if trusted {
            if let image = fetched.image { self.image = image }
            network.replaceFiles(with: fetched.network)
            for registry in fetched.insecureRegistries where !insecureRegistries.contains(registry) { insecureRegistries.append(registry) }
            if let platform = fetched.platform { self.platform = platform }
            rescue = rescue || fetched.rescue
            if let report = fetched.reportURL { reportURL = report }
            if fetched.mode == .exit { mode = .exit }
            // (A server can ask for more checks, never fewer.)
            for name in fetched.verifyKeys where !verifyKeys.contains(name) { verifyKeys.append(name) }
        }
        try checkVolumes()
    }

    /// An alias replaces one of the same name.
    private mutating func setS3(_ alias: S3Alias) {
        s3.removeAll { $0.alias == alias.alias }
        s3.append(alias)
    }

    /// Every volume's mirror names a defined `wyr.s3` alias, and `push_on=boot` has a disk to push from.
    public func checkVolumes() throws(CmdlineError) {
        for volume in volumes {
            if let alias = volume.mirror?.alias, !s3.contains(where: { $0.alias == alias }) {
                throw .undefinedS3Alias(parameter: "wyr.volume=\(volume.name)", alias: alias)
            }
            if volume.pushOn.contains(.boot) && cache == nil {
                throw .invalidValue(parameter: "wyr.volume", value: volume.rendered,
                                    reason: "push_on=boot sends what the previous boot left on a local disk: add wyr.cache=auto or wyr.cache=/dev/DISK")
            }
        }
    }

    /// An http(s) URL as a parameter's value: printable ASCII, no spaces or quotes.
    static func url(_ value: String, parameter: String) throws(CmdlineError) -> String {
        guard value.hasPrefix("http://") || value.hasPrefix("https://"), value.split(separator: "/").count >= 2 else {
            throw .invalidValue(parameter: parameter, value: value, reason: "must be an https:// (or http://) URL")
        }
        guard value.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F && $0 != "\"" }) else {
            throw .invalidValue(parameter: parameter, value: value, reason: "a URL holds printable ASCII only (percent-encode the rest)")
        }
        return value
    }

    /// libcurl's pin syntax: `sha256//` + base64 of 32 bytes, several joined by ';'.
    static func isKeyPin(_ value: String) -> Bool {
        let base64 = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=".unicodeScalars)
        let pins = value.split(separator: ";", omittingEmptySubsequences: false)
        return !pins.isEmpty && pins.allSatisfy { pin in
            pin.hasPrefix("sha256//") && pin.dropFirst(8).count == 44 && pin.dropFirst(8).unicodeScalars.allSatisfy(base64.contains)
        }
    }

    private mutating func apply(name: String, parameter: KernelParameter) throws(CmdlineError) {
        let key = parameter.key
        if parameter.unterminatedQuote { throw .unterminatedQuote(parameter: key) }
        if !parameter.isValidUTF8 { throw .invalidUTF8(parameter: key) }
        // (Values travel on to files, URLs and messages: a newline or an escape never belongs.
        // wyr.arg values are the next kernel's, checked there.)
        if name != "arg", let v = parameter.value, v.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            // (An S3 alias holds a secret key: only its name is shown.)
            let shown = name == "s3" ? String(v.prefix { $0 != "," }) + ",…" : v
            throw .invalidValue(parameter: key, value: shown, reason: "control characters (such as a newline) cannot appear in this value")
        }
        func value(_ expected: String) throws(CmdlineError) -> String {
            guard let v = parameter.value, !v.isEmpty else { throw .missingValue(parameter: key, expected: expected) }
            return v
        }

        switch name {
        case "img":
            let v = try value("REGISTRY/IMAGE[:TAG][@sha256:DIGEST]")
            do { image = try Reference(parsing: v) } catch { throw .invalidImage(parameter: key, reason: error.description) }
        case "arg":
            // An empty wyr.arg adds nothing, as in the original.
            args.append(parameter.value ?? "")
        case "efi":
            let v = try value("write|clear")
            guard let action = EFIAction(rawValue: v) else {
                throw .invalidValue(parameter: key, value: v, reason: "must be 'write' or 'clear'")
            }
            efi = action
        case "insecure":
            let v = try value("HOST[:PORT]")
            if let reason = Reference.registryProblem(v) { throw .invalidValue(parameter: key, value: v, reason: reason) }
            if !insecureRegistries.contains(v) { insecureRegistries.append(v) }
        case "platform":
            let v = try value("OS/ARCH[/VARIANT]")
            do { platform = try Platform(parsing: v) } catch { throw .invalidValue(parameter: key, value: v, reason: error.reason) }
        case "rescue":
            switch parameter.value {
            case nil, "1", "yes", "true", "on": rescue = true
            case "0", "no", "false", "off": rescue = false
            case let v?: throw .invalidValue(parameter: key, value: v, reason: "must be empty, 1/yes/true/on or 0/no/false/off")
            }
        case "report":
            reportURL = try Self.url(try value("http(s)://SERVER/v1/report/MAC"), parameter: key)
        case "volume":
            let spec = try VolumeSpec(parsing: try value("NAME,mirror=ALIAS/BUCKET[,…]"), parameter: key)
            if volumes.contains(where: { $0.name == spec.name }) { throw .duplicateVolume(name: spec.name) }
            volumes.append(spec)
        case "s3":
            setS3(try S3Alias(parsing: try value("ALIAS,URL,ACCESS_KEY,SECRET_KEY"), parameter: key))
        case "cache":
            cache = try CacheSpec(parsing: try value("auto|/dev/DISK[,format]"), parameter: key)
        case "extra_args_url":
            extraArgsURL = try Self.url(try value("https://SERVER/PATH"), parameter: key)
        case "server":
            let v = try Self.url(try value("https://SERVER[:PORT]"), parameter: key)
            // The config path is appended: a base URL only.
            guard !v.contains("?"), !v.contains("#") else {
                throw .invalidValue(parameter: key, value: v, reason: "must be the server's base URL (https://SERVER[:PORT][/PATH]), without a query")
            }
            server = v.hasSuffix("/") ? String(v.dropLast()) : v
        case "server_pin":
            let v = try value("sha256//BASE64")
            guard Self.isKeyPin(v) else {
                throw .invalidValue(parameter: key, value: v, reason: "must be sha256// and the base64 SHA-256 of the server's public key (several joined by ';'), as curl --pinnedpubkey takes it")
            }
            serverPin = v
        case "mode":
            let v = try value("boot|exit")
            guard let m = Mode(rawValue: v) else { throw .invalidValue(parameter: key, value: v, reason: "must be 'boot' or 'exit'") }
            mode = m
        case "verify":
            let v = try value("KEYNAME[,KEYNAME…]")
            for name in v.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
                guard !name.isEmpty, name.unicodeScalars.allSatisfy({ $0.isASCIILetter || $0.isASCIIDigit || "._-".unicodeScalars.contains($0) }) else {
                    throw .invalidValue(parameter: key, value: v, reason: "key names are letters, digits, '.', '_' and '-', separated by commas (the names given to scripts/build-initramfs --trust-key)")
                }
                if !verifyKeys.contains(name) { verifyKeys.append(name) }
            }
        case "depth":
            let v = try value("N")
            guard let n = Int(v), n >= 0, n <= 1000 else {
                throw .invalidValue(parameter: key, value: v, reason: "must be a small non-negative number")
            }
            depth = n
        default:
            if name.hasPrefix("net.") {
                try network.add(path: String(name.dropFirst(4)), value: parameter.value, parameter: key)
            } else {
                unknownKeys.append(key)
            }
        }
    }
}
