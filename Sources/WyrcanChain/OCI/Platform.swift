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
        for part in parts {
            guard !part.isEmpty, part.unicodeScalars.allSatisfy({ $0.isASCIILetter || $0.isASCIIDigit || $0 == "_" }) else {
                throw .invalidPlatform(text, reason: "'\(part)' must be letters, digits or '_'")
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
