/// Why an image could not be fetched. Messages name the image or blob and say what to do.
public enum RegistryError: RetryableError, CustomStringConvertible, Sendable {
    case transport(CurlError)
    /// `retryAfter`: the server's `Retry-After`, in seconds, for a retry.
    case http(status: Int, url: String, detail: String, retryAfter: Double? = nil)
    case unauthorized(registry: String, detail: String)
    case notFound(what: String)
    case digestMismatch(what: String, expected: Digest, actual: String)
    case sizeMismatch(what: String, expected: Int64, actual: Int64)
    case noPlatform(image: String, platform: Platform, available: [String])
    case invalidManifest(what: String, reason: String)
    case file(FileError)
    case crypto(CryptoError)
    case authFile(path: String, reason: String)
    /// A local OCI image layout (`oci:`, or an archive's) lacks what is asked for.
    case layout(name: String, reason: String)

    public var description: String {
        switch self {
        case .transport(let e):
            let hint = e.speaksPlainHTTP
                ? "; the registry speaks plain HTTP: allow that with --insecure-registry HOST[:PORT] (wyr.insecure= at boot)"
                : e.isTLSFailure ? "; to trust a private CA use --ca-file [HOST=]FILE" : ""
            return "network error: \(e.description)\(hint)"
        case .http(let status, let url, let detail, _): return "\(url): HTTP \(status)\(detail.isEmpty ? "" : ": \(detail)")"
        case .unauthorized(let registry, let detail):
            return "\(registry): access denied (\(detail)); check the credentials in the auth file"
        case .notFound(let what): return "\(what): not found in the registry"
        case .digestMismatch(let what, let expected, let actual):
            return "\(what): content digest is \(expected.algorithm.rawValue):\(actual), expected \(expected); refusing corrupted data"
        case .sizeMismatch(let what, let expected, let actual) where actual > expected:
            return "\(what): got more than the \(expected) bytes its descriptor gives; refusing it"
        case .sizeMismatch(let what, let expected, let actual):
            return "\(what): got \(actual) bytes, expected \(expected); refusing truncated data"
        case .noPlatform(let image, let platform, let available):
            return "\(image): no image for platform \(platform) (available: \(available.isEmpty ? "none" : available.joined(separator: ", "))); choose one with wyr.platform= / --platform"
        case .invalidManifest(let what, let reason): return "\(what): invalid manifest: \(reason)"
        case .file(let e): return e.description
        case .crypto(let e): return e.description
        case .authFile(let path, let reason): return "auth file \(path): \(reason)"
        case .layout(let name, let reason): return "\(name): \(reason)"
        }
    }

    /// Worth another attempt: connection trouble, throttling, server errors.
    public var isTransient: Bool {
        switch self {
        case .transport(let e): return e.isTransient
        case .http(let status, _, _, _): return RetryPolicy.isTransient(status: status)
        default: return false
        }
    }

    /// How long the server asked us to wait before asking again, if it said.
    public var retryAfter: Double? {
        if case .http(_, _, _, let seconds) = self { return seconds }
        return nil
    }
}
