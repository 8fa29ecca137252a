import COpenSSL

/// A public key that checks image signatures, in the kinds cosign and containers/image accept
/// (PEM "PUBLIC KEY"): ECDSA P-256 or P-384 and RSA over SHA-256 (sigstore's fixed hash for keys
/// given by file), Ed25519 over the message itself.
public final class SignatureKey: @unchecked Sendable {
    public enum Kind: String, Sendable {
        case ecdsaP256 = "ECDSA P-256", ecdsaP384 = "ECDSA P-384", ed25519 = "Ed25519", rsa = "RSA"
    }

    public let kind: Kind
    /// The EVP_PKEY; read-only after init (EVP verification contexts are per call).
    private let key: OpaquePointer

    /// Reads the first public key of a PEM text.
    public init(pem: String) throws(CryptoError) {
        let loaded: OpaquePointer? = withMemoryBIO(pem) { bio in bio.flatMap { PEM_read_bio_PUBKEY($0, nil, nil, nil) } }
        guard let loaded else {
            ERR_clear_error()
            throw CryptoError(operation: "reading the key", detail: "not a PEM public key")
        }
        guard let kind = Self.kind(of: loaded) else {
            EVP_PKEY_free(loaded)
            throw CryptoError(operation: "reading the key", detail: "unsupported key type (use ECDSA P-256/P-384, Ed25519 or RSA of 2048 bits or more)")
        }
        self.key = loaded
        self.kind = kind
    }

    deinit { EVP_PKEY_free(key) }

    static func kind(of key: OpaquePointer) -> Kind? {
        switch EVP_PKEY_get_base_id(key) {
        case EVP_PKEY_ED25519: return .ed25519
        case EVP_PKEY_RSA: return EVP_PKEY_get_bits(key) >= 2048 ? .rsa : nil
        case EVP_PKEY_EC:
            // By the curve's name: other 256-bit curves (secp256k1, brainpool) are not sigstore's.
            var name = [CChar](repeating: 0, count: 64)
            guard EVP_PKEY_get_group_name(key, &name, name.count, nil) == 1 else { return nil }
            switch String(cString: name) {
            case "prime256v1", "P-256": return .ecdsaP256
            case "secp384r1", "P-384": return .ecdsaP384
            default: return nil
            }
        default: return nil
        }
    }

    /// Whether `signature` (DER for ECDSA) signs `message` with this key.
    public func verifies(_ signature: [UInt8], over message: [UInt8]) -> Bool {
        guard let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(context) }
        // (A failed check leaves errors on the thread's queue: not ours to keep.)
        defer { ERR_clear_error() }
        let digest = kind == .ed25519 ? nil : EVP_sha256()
        guard EVP_DigestVerifyInit(context, nil, digest, nil, key) == 1 else { return false }
        let status = signature.withUnsafeBufferPointer { sig in
            message.withUnsafeBufferPointer { msg in
                EVP_DigestVerify(context, sig.baseAddress, sig.count, msg.baseAddress, msg.count)
            }
        }
        return status == 1
    }
}
