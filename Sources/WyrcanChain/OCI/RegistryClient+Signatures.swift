#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Sigstore signatures as cosign, skopeo and podman attach them: the tag `sha256-<hex>.sig` of the
/// image's repository is an OCI manifest with one layer per signature, each a simple-signing
/// payload with its signature in an annotation.
extension RegistryClient {
    public static let simpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
    public static let signatureAnnotation = "dev.cosignproject.cosign/signature"
    /// A payload is a few hundred bytes; anything much larger is not one.
    static let maximumPayloadBytes: Int64 = 64 << 10

    public static func signatureTag(for digest: Digest) -> String { "\(digest.algorithm.rawValue)-\(digest.hex).sig" }

    /// The signatures attached to `digest`: nil when the tag does not exist, empty when it holds no
    /// simple-signing layer. The signature manifest and each payload are digest-checked like any
    /// pull; payloads pass through `workDirectory`.
    public func signatures(of digest: Digest, workDirectory: String) throws(RegistryError) -> [ImageSignature]? {
        let tag = Self.signatureTag(for: digest)
        let body: [UInt8]
        do throws(RegistryError) { body = try fetchManifest(tag, expected: nil).body } catch {
            if case .notFound = error { return nil }
            throw error
        }
        let manifest: Manifest
        do { manifest = try JSONDecoder().decode(Manifest.self, from: Data(body)) } catch {
            throw .invalidManifest(what: "\(reference.registry)/\(reference.repository):\(tag)", reason: Self.decodingProblem(error))
        }
        var found: [ImageSignature] = []
        for (index, layer) in manifest.layers.enumerated() where layer.mediaType == Self.simpleSigningMediaType {
            guard let signature = layer.annotations?[Self.signatureAnnotation], layer.size <= Self.maximumPayloadBytes else { continue }
            let path = "\(workDirectory)/signature-\(digest.hex.prefix(16))-\(index)"
            try fetchBlob(layer, to: path)
            defer { FileSystem.remove(path) }
            do throws(FileError) { found.append(ImageSignature(payload: try FileSystem.readFile(path), signature: signature)) } catch {
                throw .file(error)
            }
        }
        return found
    }
}
