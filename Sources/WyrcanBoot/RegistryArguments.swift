import ArgumentParser
import WyrcanChain

/// How to reach registries and which signatures to demand: shared by `convert` and `verify`.
struct RegistryArguments: ParsableArguments {
    @Option(help: ArgumentHelp("Image of a multi-platform index to use (default: this machine's).", valueName: "OS/ARCH[/VARIANT]"))
    var platform: String?

    @Option(name: .customLong("insecure-registry"), help: ArgumentHelp("Reach this registry over plain HTTP (repeatable).", valueName: "HOST[:PORT]"))
    var insecureRegistries: [String] = []

    @Option(name: .customLong("ca-file"), help: ArgumentHelp("PEM file of CAs to trust for HTTPS: FILE for every registry, HOST[:PORT]=FILE for one registry or mirror (repeatable).", valueName: "[HOST=]FILE"))
    var caFiles: [String] = []

    @Option(name: .customLong("auth-file"), help: ArgumentHelp("Docker-style config.json / auth.json with registry credentials.", valueName: "FILE"))
    var authFile: String?

    @Option(help: ArgumentHelp("Try this mirror before the image's registry (repeatable).", valueName: "HOST[:PORT]"))
    var mirror: [String] = []

    /// `HOST[:PORT]=FILE` → (host, file); a plain `FILE` (an existing file, or one with `=` only
    /// after a `/`) → (nil, file).
    static func caFileOption(_ value: String) -> (host: String?, file: String) {
        guard !FileSystem.exists(value), let eq = value.firstIndex(of: "="), !value[..<eq].contains("/"), eq != value.startIndex else {
            return (nil, value)
        }
        return (String(value[..<eq]), String(value[value.index(after: eq)...]))
    }

    /// The registry options for `location` (mirrors apply to its registry).
    func options(for location: ImageLocation) throws -> RegistryOptions {
        for m in mirror where m.contains("/") || m.isEmpty {
            throw ValidationError("--mirror \(m): give HOST[:PORT], without a scheme or path (plain HTTP with --insecure-registry HOST[:PORT])")
        }
        var options = RegistryOptions()
        options.insecureRegistries = Set(insecureRegistries)
        for value in caFiles {
            let (host, file) = Self.caFileOption(value)
            guard FileSystem.exists(file) else { throw ValidationError("--ca-file \(value): \(file) does not exist") }
            if let host {
                options.caFiles[host] = file
            } else {
                guard options.caFile == nil else { throw ValidationError("--ca-file: give one FILE for every registry; use HOST=FILE for others") }
                options.caFile = file
            }
        }
        if let platform { options.platform = try Platform(parsing: platform) }
        if let authFile { try options.loadAuthFile(authFile) }
        if case .registry(let reference) = location, !mirror.isEmpty {
            options.mirrors[reference.registry] = mirror
        }
        return options
    }

    /// The keys of `--verify-key`/`--key` files; nil when none are given.
    static func verifier(keyFiles: [String], option: String) throws -> ImageSignatureVerifier? {
        guard !keyFiles.isEmpty else { return nil }
        var keys: [TrustedKey] = []
        for file in keyFiles {
            do throws(FileError) { keys.append(try TrustedKey.load(file: file)) } catch {
                throw ValidationError("\(option) \(file): \(error.cause) (a PEM public key: ECDSA P-256/P-384, Ed25519 or RSA, e.g. cosign.pub)")
            }
        }
        return ImageSignatureVerifier(keys: keys)
    }
}
