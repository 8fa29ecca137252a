/// An OCI platform `OS/ARCHITECTURE[/VARIANT]`, as in an image index.
public struct Platform: Sendable, Hashable, Codable, CustomStringConvertible {
    public var os: String
    public var architecture: String
    public var variant: String?

    enum CodingKeys: String, CodingKey {
        case os, architecture, variant
    }

    public init(os: String, architecture: String, variant: String? = nil) {
        self.os = os
        self.architecture = Self.normalise(architecture)
        self.variant = variant
    }

    public init(parsing text: String) throws(ReferenceError) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2 || parts.count == 3 else {
            throw .invalidPlatform(text, reason: "expected OS/ARCH or OS/ARCH/VARIANT, such as linux/amd64")
        }
        for (i, part) in parts.enumerated() {
            // A variant may be a point level (arm64's v8.2).
            let allowed: (Unicode.Scalar) -> Bool = { $0.isASCIILetter || $0.isASCIIDigit || $0 == "_" || (i == 2 && $0 == ".") }
            guard !part.isEmpty, part.unicodeScalars.allSatisfy(allowed) else {
                throw .invalidPlatform(text, reason: "'\(part)' must be letters, digits or '_'\(i == 2 ? " (or '.')" : "")")
            }
        }
        self.init(os: parts[0].lowercased(), architecture: parts[1].lowercased(), variant: parts.count == 3 ? parts[2].lowercased() : nil)
    }

    /// The platform this binary runs on.
    public static var current: Platform {
        #if arch(x86_64)
        Platform(os: "linux", architecture: "amd64")
        #elseif arch(arm64)
        Platform(os: "linux", architecture: "arm64", variant: "v8")
        #elseif arch(riscv64)
        Platform(os: "linux", architecture: "riscv64")
        #else
        Platform(os: "linux", architecture: "unknown")
        #endif
    }

    /// How well an image built for `variant` (of this OS and architecture) suits this platform;
    /// nil when it cannot run here. Variants are levels of an architecture — `v5` < `v6` < `v7`
    /// (arm), `v1` < … < `v4` (amd64), `v8` < `v8.1` < … (arm64) — and a machine runs its own
    /// level and those below, not those above (as containerd matches them). Its own variant
    /// ranks first, then lower levels from the nearest, then an image with no variant (the
    /// architecture's baseline). Without a variant of its own, the platform is at its
    /// architecture's baseline: `v7` for arm, `v8` for arm64, `v1` for amd64 (for any other
    /// architecture, every variant will do).
    func variantRank(of variant: String?) -> Int? {
        let own = self.variant ?? ["arm": "v7", "arm64": "v8", "amd64": "v1"][architecture]
        guard let variant else { return 0 }
        if variant == own { return Int.max }
        // An architecture without levels known here, asked for without a variant: any will do.
        guard let own else { return 0 }
        guard let ownLevel = Self.level(own), let level = Self.level(variant), level <= ownLevel else { return nil }
        return 1 + Int(level * 1000)
    }

    /// `v7` → 7, `v8.2` → 8.2; nil for a variant that is not a level.
    private static func level(_ variant: String) -> Double? {
        guard variant.hasPrefix("v") else { return nil }
        return Double(variant.dropFirst())
    }

    /// Whether an index entry's `entry` platform is for this OS and architecture (any variant).
    func hasOSAndArchitecture(of entry: Platform) -> Bool {
        entry.os == os && Self.normalise(entry.architecture) == architecture
    }

    /// GOARCH spelling, as OCI uses it.
    static func normalise(_ arch: String) -> String {
        switch arch {
        case "x86_64", "x86-64": return "amd64"
        case "aarch64": return "arm64"
        case "i386", "i686": return "386"
        default: return arch
        }
    }

    public var description: String {
        variant.map { "\(os)/\(architecture)/\($0)" } ?? "\(os)/\(architecture)"
    }
}
