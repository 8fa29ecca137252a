/// What went wrong talking to an S3 endpoint, phrased for the person who wrote the `wyr.s3` alias.
public enum S3Error: RetryableError, CustomStringConvertible, Sendable {
    /// The endpoint could not be reached or the transfer broke (after retries).
    case transport(endpoint: String, operation: String, CurlError)
    /// The server answered with an error status (after retries where that makes sense).
    /// `retryAfter`: the server's `Retry-After`, in seconds, for a retry.
    case http(endpoint: String, operation: String, status: Int, code: String, message: String, retryAfter: Double? = nil)
    /// What arrived or was stored is not what was sent or listed.
    case integrity(operation: String, reason: String)
    case file(FileError)
    case crypto(CryptoError)
    /// The alias's URL cannot be used.
    case badEndpoint(String)

    public var description: String {
        switch self {
        case .transport(let endpoint, let operation, let error):
            return "\(endpoint): \(operation): \(error.message)"
        case .http(let endpoint, let operation, let status, let code, let message, _):
            let hint: String
            switch code {
            case "InvalidAccessKeyId": hint = ": the access key is unknown to the server (check the wyr.s3 alias)"
            case "SignatureDoesNotMatch": hint = ": the secret key does not match the access key (check the wyr.s3 alias)"
            case "AccessDenied": hint = ": the credentials may not do this"
            case "NoSuchBucket": hint = ": the bucket does not exist (create it first)"
            default: hint = message.isEmpty ? "" : ": \(message)"
            }
            return "\(endpoint): \(operation): HTTP \(status)\(code.isEmpty ? "" : " \(code)")\(hint)"
        case .integrity(let operation, let reason):
            return "\(operation): \(reason)"
        case .file(let error):
            return error.description
        case .crypto(let error):
            return error.description
        case .badEndpoint(let reason):
            return reason
        }
    }

    /// Worth another attempt: connection trouble, throttling, server errors.
    public var isTransient: Bool {
        switch self {
        case .transport(_, _, let error): return error.isTransient
        case .http(_, _, let status, let code, _, _):
            return RetryPolicy.isTransient(status: status) || code == "SlowDown" || code == "RequestTimeout"
        case .integrity: return true
        default: return false
        }
    }

    public var retryAfter: Double? {
        if case .http(_, _, _, _, _, let seconds) = self { return seconds }
        return nil
    }
}
