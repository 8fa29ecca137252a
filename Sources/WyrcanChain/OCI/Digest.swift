/// A content digest, `ALGORITHM:HEX`, as used by OCI for manifests and blobs.
public struct Digest: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Algorithm: String, Sendable, Codable {
        case sha256, sha512
        var hexLength: Int { self == .sha256 ? 64 : 128 }
        /// The hash that computes it.
        var digester: Digester.Algorithm { self == .sha512 ? .sha512 : .sha256 }
    }

    public let algorithm: Algorithm
    public let hex: String

    public init(algorithm: Algorithm, hex: String) throws(ReferenceError) {
        guard hex.utf8.count == algorithm.hexLength,
              hex.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) })
        else {
            throw .invalidDigest("\(algorithm.rawValue):\(hex)", reason: "a \(algorithm.rawValue) digest is \(algorithm.hexLength) lowercase hex digits")
        }
        self.algorithm = algorithm
        self.hex = hex
    }

    public init(parsing text: String) throws(ReferenceError) {
        guard let colon = text.firstIndex(of: ":") else {
            throw .invalidDigest(text, reason: "expected ALGORITHM:HEX such as sha256:…")
        }
        let name = String(text[..<colon])
        guard let algorithm = Algorithm(rawValue: name) else {
            throw .invalidDigest(text, reason: "unsupported digest algorithm '\(name)' (use sha256 or sha512)")
        }
        try self.init(algorithm: algorithm, hex: String(text[text.index(after: colon)...]))
    }

    public var description: String { "\(algorithm.rawValue):\(hex)" }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        self = try Digest(parsing: text)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
