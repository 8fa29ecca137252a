#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// A public key Wyrcan trusts to sign images, named for messages (its file's name).
public struct TrustedKey: Sendable {
    public var name: String
    public var key: SignatureKey
    /// SHA-256 of the key file (hex), when read from one: a replaced file is another key.
    public var fingerprint: String

    public init(name: String, key: SignatureKey, fingerprint: String = "") {
        self.name = name
        self.key = key
        self.fingerprint = fingerprint
    }

    /// A PEM public key is well under this.
    public static let maximumFileBytes = 64 << 10

    /// The key in a PEM file, named after the file (without `.pub`/`.pem`).
    public static func load(file: String) throws(FileError) -> TrustedKey {
        let bytes = try FileSystem.readRegularFile(file, maximumBytes: maximumFileBytes)
        do throws(CryptoError) {
            let key = try SignatureKey(pem: String(decoding: bytes, as: UTF8.self))
            return TrustedKey(name: name(ofFile: file), key: key, fingerprint: try Digester.hash(.sha256, bytes).hexString)
        } catch {
            throw FileError(operation: "read the public key", path: file, code: EINVAL, reason: error.detail)
        }
    }

    /// A key file's name without its directory and `.pub`/`.pem`.
    public static func name(ofFile path: String) -> String {
        let base = String(path.split(separator: "/").last ?? Substring(path))
        return [".pub", ".pem"].first(where: base.hasSuffix).map { String(base.dropLast($0.count)) } ?? base
    }
}

/// One sigstore signature as found in the registry: the payload bytes and the base64 signature
/// from the layer's `dev.cosignproject.cosign/signature` annotation.
public struct ImageSignature: Sendable {
    public var payload: [UInt8]
    public var signature: String

    public init(payload: [UInt8], signature: String) {
        self.payload = payload
        self.signature = signature
    }
}

/// Checks that an image is signed by one of `keys`, the way cosign and containers/image do it
/// for keys given by file: a signature over the payload by the key, a payload of the simple-signing
/// type naming exactly the image's manifest digest, and a reference that matches the image's as
/// containers/image's default identity rule does (`matchRepoDigestOrExact`): the same repository
/// and, when both name a tag, the same tag — so an image signed as `:debug` cannot be served as
/// `:prod`. (A digest reference pins the image: its repository is enough.) No transparency log is
/// consulted.
public struct ImageSignatureVerifier: Sendable {
    public var keys: [TrustedKey]

    public init(keys: [TrustedKey]) {
        self.keys = keys
    }

    public var keyNames: [String] { keys.map(\.name) }

    /// The key that signed `digest` of `reference`, among `signatures`.
    public func check(_ signatures: [ImageSignature], digest: Digest, reference: Reference) throws(SignatureError) -> TrustedKey {
        var findings: [SignatureError.Finding] = []
        for candidate in signatures {
            switch checkOne(candidate, digest: digest, reference: reference) {
            case .success(let key): return key
            case .failure(let finding): findings.append(finding)
            }
        }
        throw .rejected(image: "\(reference.registry)/\(reference.repository)@\(digest)", keys: keyNames, findings: findings)
    }

    /// The key first, then what the payload says: a payload is only read once a trusted key
    /// has signed it.
    func checkOne(_ candidate: ImageSignature, digest: Digest, reference: Reference) -> Result<TrustedKey, SignatureError.Finding> {
        guard let signature = Data(base64Encoded: candidate.signature.trimming(" \n")) else { return .failure(.badEncoding) }
        guard let key = keys.first(where: { $0.key.verifies(Array(signature), over: candidate.payload) }) else { return .failure(.noTrustedKey) }
        let payload: SimpleSigningPayload
        switch SimpleSigningPayload.parse(candidate.payload) {
        case .success(let p): payload = p
        case .failure(let problem): return .failure(.payload(problem))
        }
        guard payload.manifestDigest == digest else { return .failure(.otherDigest(payload.manifestDigest)) }
        guard Self.identityMatches(payload.dockerReference, reference) else { return .failure(.otherReference(payload.dockerReference)) }
        return .success(key)
    }

    /// `matchRepoDigestOrExact`: the repository, and the tag when the image is asked for by tag
    /// and the signer named one (cosign names none).
    static func identityMatches(_ signed: String, _ reference: Reference) -> Bool {
        // (Reference parsing adds :latest to a bare name: look at the text for the signer's tag.)
        guard let named = try? Reference(parsing: signed), named.registry == reference.registry, named.repository == reference.repository else {
            return false
        }
        let lastPart = signed.split(separator: "/").last ?? ""
        let signerNamedTag = lastPart.contains(":") || signed.contains("@")
        guard reference.digest == nil, signerNamedTag, named.digest == nil else { return true }
        return named.tag == reference.tag
    }

    /// Fetches the signatures of the image `client` resolved (its index's digest first, then its
    /// platform manifest's) and checks them. Returns the key and the digest it signed.
    public func verify(_ image: ResolvedImage, client: RegistryClient, workDirectory: String) throws(SignatureError) -> (key: TrustedKey, digest: Digest) {
        let reference = client.reference
        let digests = image.topDigest == image.manifestDigest ? [image.topDigest] : [image.topDigest, image.manifestDigest]
        var rejection: SignatureError? = nil
        for digest in digests {
            let found: [ImageSignature]?
            do throws(RegistryError) { found = try client.signatures(of: digest, workDirectory: workDirectory) } catch {
                throw .registry(image: reference.description, error)
            }
            guard let signatures = found else { continue }
            if signatures.isEmpty {
                rejection = rejection ?? .rejected(image: "\(reference.registry)/\(reference.repository)@\(digest)", keys: keyNames, findings: [.noSimpleSigningLayer])
                continue
            }
            do throws(SignatureError) { return (try check(signatures, digest: digest, reference: reference), digest) } catch {
                rejection = rejection ?? error
            }
        }
        throw rejection ?? .unsigned(image: "\(reference.registry)/\(reference.repository)@\(image.topDigest)",
                                      tag: RegistryClient.signatureTag(for: image.topDigest), keys: keyNames)
    }
}
