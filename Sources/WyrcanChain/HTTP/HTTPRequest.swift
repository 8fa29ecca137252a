/// One HTTP request: what to send, and how to reach the server (`HTTPOptions`).
public struct HTTPRequest: Sendable {
    public var method: String
    public var url: String
    /// Raw header lines (`Name: value`); `Name:` alone removes one libcurl would add.
    public var headers: [String]
    /// Uploaded as the request body (with `Content-Length`) when set.
    public var body: [UInt8]?
    public var options: HTTPOptions

    public init(_ method: String = "GET", url: String, headers: [String] = [], body: [UInt8]? = nil, options: HTTPOptions = HTTPOptions()) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.options = options
    }
}

/// How a request reaches its server: whom to trust, how long to wait, whether to follow
/// redirects, how much of a body to hold in memory. Each client keeps one value and adjusts it.
public struct HTTPOptions: Sendable, Equatable {
    /// A PEM bundle of CAs trusted instead of the system's (a private registry, a site CA).
    public var caFile: String?
    /// The server's public key, `sha256//BASE64` (libcurl's pinning syntax; several joined by
    /// `;`): the connection fails unless the server's key is one of them. Without `caFile` the
    /// pin alone is trusted, whoever signed the certificate (a self-signed server).
    public var pinnedPublicKey: String?
    /// Only `https://` is spoken, also after a redirect: a plain-HTTP URL fails before connecting.
    public var httpsOnly = false
    public var connectTimeoutSeconds = 15
    /// The whole request's limit; nil for none (blob downloads), where `stallSeconds` still
    /// catches a transfer that stopped.
    public var timeoutSeconds: Int? = 60
    /// A transfer below 1 byte/s for this long fails (a transient error, retried).
    public var stallSeconds: Int? = nil
    public var followRedirects = false
    public var maximumRedirects = 10
    /// Socket reads of this size for large bodies (fewer system calls than libcurl's 16 KiB).
    public var receiveBufferBytes: Int? = nil
    /// The most of a body held in memory: a buffered response, or an error's body. A larger
    /// buffered response fails (`CurlError.responseTooLarge`); an error body is cut there.
    public var maximumBufferedBytes = 8 << 20

    public init() {}

    /// The same options with `caFile` and `pinnedPublicKey` set (nil leaves them as they are).
    public func trusting(caFile: String?, pinnedPublicKey: String? = nil) -> HTTPOptions {
        var copy = self
        if let caFile { copy.caFile = caFile }
        if let pinnedPublicKey { copy.pinnedPublicKey = pinnedPublicKey }
        return copy
    }
}
