#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What a Wyrcan stage would do with a cmdline: the image, the next kernel's cmdline, the network
/// files, the EFI action and the volumes. `wyrcan plan` prints it; the boot agent executes it.
public struct BootPlan: Sendable {
    public let args: WyrcanArgs
    /// The next kernel's cmdline, or nil when no image is named (the EFI variable is then used).
    public let nextCmdline: String?
    /// The chain of Wyrcan stages this cmdline starts, when it starts more than one.
    public let chain: Chain?
    public let warnings: [String]

    public init(cmdline: String, imageCmdline: String = "") throws(CmdlineError) {
        let args = try WyrcanArgs(parsing: cmdline)
        var warnings: [String] = []
        for key in args.unknownKeys {
            warnings.append("\(key): not a Wyrcan parameter; ignored")
        }
        if args.image == nil && !args.args.isEmpty && args.server == nil {
            warnings.append("wyr.arg is given but wyr.img is not: the args apply only to a config stored in EFI")
        }
        if args.efi == .write && args.image == nil {
            throw .missingValue(parameter: "wyr.img", expected: "REGISTRY/IMAGE (wyr.efi=write stores wyr.img and wyr.arg)")
        }
        var next: String? = nil
        var chain: Chain? = nil
        if args.image != nil {
            next = try args.nextCmdline(imageCmdline: imageCmdline)
            let resolved = try Chain(decoding: cmdline)
            if resolved.stages.count > 1 { chain = resolved }
        }
        self.args = args
        self.nextCmdline = next
        self.chain = chain
        self.warnings = warnings
    }

    // MARK: - Output

    /// The `--json` document. Secrets (S3 secret keys) are never included.
    public struct Document: Codable, Sendable, Equatable {
        public struct Volume: Codable, Sendable, Equatable {
            public var name: String
            public var mirror: String?
            public var pullOn: [String]
            public var pushOn: [String]
            public var overwrite: Bool
            public var remove: Bool
            public var exclude: [String]
            public var path: String
            public var expiration: String
        }
        public struct S3: Codable, Sendable, Equatable {
            public var alias: String
            public var url: String
            public var accessKey: String
        }
        public var image: String?
        public var cmdline: String?
        public var networkFiles: [String: String]
        public var efi: String?
        public var volumes: [Volume]
        public var s3: [S3]
        public var cache: String?
        public var extraArgsURL: String?
        /// `wyr.server` (its key pin, if any, is not a secret: shown too).
        public var server: String?
        public var serverPin: String?
        public var mode: String
        public var insecureRegistries: [String]
        public var platform: String?
        public var rescue: Bool
        /// `wyr.verify`: the baked keys the image must be signed by.
        public var verify: [String]
        public var report: String?
        public var depth: Int
        public var chain: Chain?
        public var ignored: [String]
        public var warnings: [String]
    }

    public var document: Document {
        Document(
            image: args.image?.description,
            cmdline: nextCmdline,
            networkFiles: Dictionary(uniqueKeysWithValues: args.network.effectiveFiles.map { ($0.path, $0.contents) }),
            efi: args.efi?.rawValue,
            volumes: args.volumes.map {
                Document.Volume(
                    name: $0.name, mirror: $0.mirror?.description, pullOn: $0.pullOn.map(\.rawValue),
                    pushOn: $0.pushOn.map(\.rawValue), overwrite: $0.overwrite, remove: $0.remove,
                    exclude: $0.exclude, path: $0.path, expiration: $0.expiration.rawValue)
            },
            s3: args.s3.map { Document.S3(alias: $0.alias, url: $0.url, accessKey: $0.accessKey) },
            cache: args.cache?.rendered,
            extraArgsURL: args.extraArgsURL,
            server: args.server,
            serverPin: args.serverPin,
            mode: args.mode.rawValue,
            insecureRegistries: args.insecureRegistries,
            platform: (args.platform ?? .current).description,
            rescue: args.rescue,
            verify: args.verifyKeys,
            report: args.reportURL,
            depth: args.depth,
            chain: chain,
            ignored: args.kernelParameters.map(\.raw),
            warnings: warnings)
    }

    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // Encoding plain strings, arrays and dictionaries cannot fail.
        let data = try! encoder.encode(document)
        return String(decoding: data, as: UTF8.self)
    }

    /// The human-readable report.
    public func text() -> String {
        var out: [String] = []
        if let image = args.image {
            out.append("Image:     \(image)")
        } else if let server = args.server {
            out.append("Image:     (from \(server)/v1/config/MAC after network-up)")
        } else {
            out.append("Image:     (none on the cmdline: the config stored in EFI is used, if any)")
        }
        out.append("Platform:  \((args.platform ?? .current).description)\(args.platform == nil ? " (this machine)" : "")")
        if let nextCmdline {
            out.append("Cmdline:   \(nextCmdline.isEmpty ? "(empty)" : nextCmdline)")
        }
        out.append("EFI:       \(args.efi.map { $0 == .write ? "write (store wyr.img, wyr.arg and wyr.net.* after validating)" : "clear (remove the stored config)" } ?? "none")")
        if !args.insecureRegistries.isEmpty {
            out.append("Insecure:  \(args.insecureRegistries.joined(separator: ", ")) (plain HTTP)")
        }
        if args.rescue { out.append("Rescue:    shell on the console after the last failure") }
        if !args.verifyKeys.isEmpty {
            out.append("Verify:    the image must be signed by \(args.verifyKeys.count == 1 ? "key" : "one of the keys") \(args.verifyKeys.joined(separator: ", ")) (baked into the initramfs)")
        }
        if let report = args.reportURL { out.append("Report:    \(report)") }
        if args.depth > 0 { out.append("Depth:     stage \(args.depth + 1) of a chain") }
        if let chain {
            out.append("Chain:")
            for (i, stage) in chain.stages.enumerated() {
                out.append("  \(i + 1). Wyrcan boots \(stage.image)")
            }
            out.append("  final cmdline: \(chain.final.isEmpty ? "(empty)" : chain.final.joined(separator: " "))")
        }
        out.append("Network:\(args.network.isEmpty ? " (default: DHCP on every ethernet link)" : "")")
        for file in args.network.effectiveFiles {
            out.append("  \(file.path):")
            for line in file.contents.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
                out.append("    \(line)")
            }
        }
        if args.volumes.isEmpty {
            out.append("Volumes:   none")
        } else {
            out.append("Volumes:")
            for v in args.volumes {
                var line = "  \(v.name) at \(v.path)"
                if let m = v.mirror { line += " mirror=\(m)" }
                if !v.pullOn.isEmpty { line += " pull_on=\(v.pullOn.map(\.rawValue).joined(separator: ","))" }
                if !v.pushOn.isEmpty { line += " push_on=\(v.pushOn.map(\.rawValue).joined(separator: ","))" }
                if v.overwrite { line += " overwrite" }
                if v.remove { line += " remove" }
                if !v.exclude.isEmpty { line += " exclude=\(v.exclude.joined(separator: ","))" }
                out.append(line)
            }
            for s in args.s3 { out.append("  s3 \(s.alias): \(s.url) (access key \(s.accessKey), secret hidden)") }
        }
        if let cache = args.cache {
            switch cache.source {
            case .auto: out.append("Cache:     the disk labelled \(CacheSpec.label), if any (volumes in RAM otherwise)")
            case .device(let path):
                out.append("Cache:     \(path)\(cache.format ? " (formatted ext4 if blank)" : ""); volumes live on it at \(CacheSpec.mountPoint)/volumes/NAME")
            }
        }
        if let server = args.server {
            let trust = args.serverPin.map { "the key \($0)" } ?? "the CA baked into the initramfs (\(ConfigServer.bakedCAFile))"
            out.append("Server:    \(server)/v1/config/MAC gives this machine's parameters, over TLS, trusted by \(trust); merged, never printed")
        }
        if args.mode == .exit { out.append("Mode:      exit: the next boot is the local disk's (EFI BootNext)") }
        if let url = args.extraArgsURL {
            out.append("Extra args: fetched from \(url) after network-up, merged, never printed")
        }
        if !args.kernelParameters.isEmpty {
            out.append("Wyrcan's own kernel only (not passed on): \(args.kernelParameters.map(\.raw).joined(separator: " "))")
        }
        for w in warnings { out.append("warning: \(w)") }
        return out.joined(separator: "\n")
    }
}
