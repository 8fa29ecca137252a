/// Why an image's signatures were not accepted: one line naming the image, the keys tried and
/// what was found.
public enum SignatureError: Error, CustomStringConvertible, Sendable {
    public enum PayloadProblem: Error, Sendable, Equatable, CustomStringConvertible {
        case notSimpleSigning
        case wrongType(String)
        case badDigest(String)

        public var description: String {
            switch self {
            case .notSimpleSigning: return "not a simple-signing payload"
            case .wrongType(let type): return "payload type \(Message.quoted(type, limit: 80)), not \"\(SimpleSigningPayload.type)\""
            case .badDigest(let text): return "payload digest \(Message.quoted(text, limit: 80)) is not a digest"
            }
        }
    }

    /// What one signature turned out to be.
    public enum Finding: Error, Sendable, Equatable, CustomStringConvertible {
        case noTrustedKey
        case otherDigest(Digest)
        case otherReference(String)
        /// The signature tag exists but holds no simple-signing layer (another format).
        case noSimpleSigningLayer
        case payload(PayloadProblem)
        case badEncoding

        public var description: String {
            switch self {
            case .noTrustedKey: return "signed by none of the keys"
            case .otherDigest(let d): return "a valid signature for another image (\(d))"
            case .otherReference(let r): return "a valid signature for another repository or tag (\(Message.quoted(r, limit: 200)))"
            case .noSimpleSigningLayer: return "the signature tag holds no simple-signing payload (cosign 3's bundles are not read: sign with cosign 2, or cosign 3 with --new-bundle-format=false --use-signing-config=false)"
            case .payload(let p): return p.description
            case .badEncoding: return "signature annotation is not base64"
            }
        }
    }

    /// No `sha256-<hex>.sig` signature manifest (or none with a simple-signing layer).
    case unsigned(image: String, tag: String, keys: [String])
    /// Signatures, none acceptable: what each was.
    case rejected(image: String, keys: [String], findings: [Finding])
    /// The signature manifest or a payload could not be read.
    case registry(image: String, RegistryError)
    /// Signatures are checked on registry images only (an OCI layout has none).
    case notARegistryImage(String)
    /// The boot's signature policy cannot be met (a key `wyr.verify` names is not baked in).
    case policy(String)

    public var description: String {
        switch self {
        case .unsigned(let image, let tag, let keys):
            return "\(image): no signature (no \(tag) in the registry); it must be signed by \(Self.list(keys))"
        case .rejected(let image, let keys, let findings):
            let found = findings.map(\.description)
            return "\(image): not signed by \(Self.list(keys)): found \(found.count) signature(s): \(found.joined(separator: "; "))"
        case .registry(let image, let error): return "\(image): reading its signatures: \(error.description)"
        case .notARegistryImage(let name): return "\(name): signatures are checked for registry images only, not OCI layouts"
        case .policy(let reason): return reason
        }
    }

    static func list(_ keys: [String]) -> String { keys.count == 1 ? "key \(keys[0])" : "one of the keys \(keys.joined(separator: ", "))" }
}
