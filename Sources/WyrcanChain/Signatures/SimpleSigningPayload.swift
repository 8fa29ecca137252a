#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What a sigstore (cosign) image signature signs: the "simple signing" JSON naming one manifest
/// digest and the reference it was pushed as.
/// `{"critical":{"identity":{"docker-reference":…},"image":{"docker-manifest-digest":…},"type":…},"optional":…}`
public struct SimpleSigningPayload: Sendable, Decodable {
    public static let type = "cosign container image signature"

    struct Critical: Decodable {
        struct Identity: Decodable {
            var dockerReference: String
            enum CodingKeys: String, CodingKey { case dockerReference = "docker-reference" }
        }
        struct Image: Decodable {
            var dockerManifestDigest: String
            enum CodingKeys: String, CodingKey { case dockerManifestDigest = "docker-manifest-digest" }
        }
        var identity: Identity
        var image: Image
        var type: String
    }

    /// The reference the signer named (registry/repository[:tag]).
    public var dockerReference: String
    /// The manifest digest the signature is for.
    public var manifestDigest: Digest

    /// Parses and checks the payload's type; nil with the reason when it is not one.
    public static func parse(_ bytes: [UInt8]) -> Result<SimpleSigningPayload, SignatureError.PayloadProblem> {
        struct Document: Decodable { var critical: Critical }
        guard let document = try? JSONDecoder().decode(Document.self, from: Data(bytes)) else { return .failure(.notSimpleSigning) }
        guard document.critical.type == type else { return .failure(.wrongType(document.critical.type)) }
        guard let digest = try? Digest(parsing: document.critical.image.dockerManifestDigest) else {
            return .failure(.badDigest(document.critical.image.dockerManifestDigest))
        }
        return .success(SimpleSigningPayload(dockerReference: document.critical.identity.dockerReference, manifestDigest: digest))
    }
}
