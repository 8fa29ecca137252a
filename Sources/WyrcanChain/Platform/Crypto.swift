import COpenSSL
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A libcrypto (OpenSSL 3) failure.
public struct CryptoError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let detail: String
    public var description: String { "\(operation) failed: \(detail)" }

    static func last(_ operation: String) -> CryptoError {
        let code = ERR_get_error()
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        let detail = buffer.withUnsafeBufferPointer { String(decoding: $0.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        return CryptoError(operation: operation, detail: code == 0 ? "unknown error" : detail)
    }
}

/// Incremental message digest (SHA-256, SHA-512, MD5) over libcrypto's EVP interface.
/// Not thread-safe: one hasher per stream.
public final class Digester {
    public enum Algorithm: String, Sendable {
        case sha256 = "SHA256", sha512 = "SHA512", md5 = "MD5"
    }

    private let context: OpaquePointer
    public let algorithm: Algorithm

    public init(_ algorithm: Algorithm) throws(CryptoError) {
        guard let context = EVP_MD_CTX_new() else { throw .last("EVP_MD_CTX_new") }
        guard let md = EVP_get_digestbyname(algorithm.rawValue), EVP_DigestInit_ex(context, md, nil) == 1 else {
            EVP_MD_CTX_free(context)
            throw .last("EVP_DigestInit_ex(\(algorithm.rawValue))")
        }
        self.context = context
        self.algorithm = algorithm
    }

    deinit { EVP_MD_CTX_free(context) }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        // EVP_DigestUpdate fails only on a context in a broken state, which init rules out.
        _ = EVP_DigestUpdate(context, base, bytes.count)
    }

    public func update<S: Sequence>(_ bytes: S) where S.Element == UInt8 {
        let array = Array(bytes)
        array.withUnsafeBytes { update($0) }
    }

    /// The digest; the hasher must not be updated afterwards.
    public func finalize() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        _ = EVP_DigestFinal_ex(context, &out, &length)
        return Array(out.prefix(Int(length)))
    }

    public static func hash(_ algorithm: Algorithm, _ bytes: [UInt8]) throws(CryptoError) -> [UInt8] {
        let h = try Digester(algorithm)
        h.update(bytes)
        return h.finalize()
    }
}

/// An HMAC-SHA256 key set up once (EVP_MAC fetched, the key scheduled): each use copies the
/// prepared context, so signing many short messages (report tokens) costs no fetch or lock.
public final class HMACKey: @unchecked Sendable {
    /// Read-only after init; `EVP_MAC_CTX_dup` gives every call its own context.
    private let prepared: OpaquePointer

    public init(_ key: [UInt8]) throws(CryptoError) {
        guard let mac = EVP_MAC_fetch(nil, "HMAC", nil) else { throw .last("EVP_MAC_fetch(HMAC)") }
        defer { EVP_MAC_free(mac) }
        guard let ctx = EVP_MAC_CTX_new(mac) else { throw .last("EVP_MAC_CTX_new") }
        var params = [wyr_ossl_param_digest("SHA256"), wyr_ossl_param_end()]
        guard key.withUnsafeBufferPointer({ EVP_MAC_init(ctx, $0.baseAddress, $0.count, &params) }) == 1 else {
            EVP_MAC_CTX_free(ctx)
            throw .last("EVP_MAC_init")
        }
        prepared = ctx
    }

    deinit { EVP_MAC_CTX_free(prepared) }

    public func sha256(_ message: [UInt8]) throws(CryptoError) -> [UInt8] {
        guard let ctx = EVP_MAC_CTX_dup(prepared) else { throw .last("EVP_MAC_CTX_dup") }
        defer { EVP_MAC_CTX_free(ctx) }
        guard message.withUnsafeBufferPointer({ EVP_MAC_update(ctx, $0.baseAddress, $0.count) }) == 1 else { throw .last("EVP_MAC_update") }
        var out = [UInt8](repeating: 0, count: 64)
        var length = 0
        guard EVP_MAC_final(ctx, &out, &length, out.count) == 1 else { throw .last("EVP_MAC_final") }
        return Array(out.prefix(length))
    }
}

/// HMAC over libcrypto's EVP_MAC (HMAC_CTX is deprecated in OpenSSL 3).
public enum HMAC {
    public static func sha256(key: [UInt8], message: [UInt8]) throws(CryptoError) -> [UInt8] {
        try HMACKey(key).sha256(message)
    }
}

/// libcurl's public-key pin (`sha256//BASE64`): the SHA-256 of a key's DER SubjectPublicKeyInfo.
public enum PublicKeyPin {
    /// The pin of the public key in the first certificate of a PEM text.
    public static func of(certificatePEM: String) throws(CryptoError) -> String {
        let der = try subjectPublicKeyInfo(certificatePEM: certificatePEM)
        return "sha256//" + Data(try Digester.hash(.sha256, der)).base64EncodedString()
    }

    static func subjectPublicKeyInfo(certificatePEM: String) throws(CryptoError) -> [UInt8] {
        let result: Result<[UInt8], CryptoError> = withMemoryBIO(certificatePEM) { bio in
            guard let bio else { return .failure(.last("BIO_new_mem_buf")) }
            guard let certificate = PEM_read_bio_X509(bio, nil, nil, nil) else { return .failure(.last("PEM_read_bio_X509")) }
            defer { X509_free(certificate) }
            guard let key = X509_get0_pubkey(certificate) else { return .failure(.last("X509_get0_pubkey")) }
            let length = i2d_PUBKEY(key, nil)
            guard length > 0 else { return .failure(.last("i2d_PUBKEY")) }
            var der = [UInt8](repeating: 0, count: Int(length))
            der.withUnsafeMutableBufferPointer { out in
                var cursor: UnsafeMutablePointer<UInt8>? = out.baseAddress
                _ = i2d_PUBKEY(key, &cursor)
            }
            return .success(der)
        }
        return try result.get()
    }
}

/// `body` with a read-only memory BIO over `text` (nil when OpenSSL could not make one).
/// BIO_new_mem_buf reads the bytes in place: the whole read happens while they are pinned.
func withMemoryBIO<T>(_ text: String, _ body: (OpaquePointer?) -> T) -> T {
    let bytes = Array(text.utf8)
    return bytes.withUnsafeBytes { buffer in
        let bio = BIO_new_mem_buf(buffer.baseAddress, Int32(buffer.count))
        defer { if let bio { BIO_free(bio) } }
        return body(bio)
    }
}
