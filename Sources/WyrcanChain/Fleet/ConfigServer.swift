import CCurl

/// wyrcan-serve's per-host config (`wyr.server=URL`), as a Wyrcan stage fetches it after
/// network-up: `GET URL/v1/config/MAC` over TLS, trusting only the CA bundle baked into the
/// initramfs or the key pinned by `wyr.server_pin`; the answer is Wyrcan parameters, merged into
/// the cmdline's with `WyrcanArgs.merge(fetched:)`.
public struct ConfigServer: Sendable {
    /// The base URL (`https://SERVER[:PORT][/PATH]`).
    public let url: String
    public let options: HTTPOptions
    /// What the server is trusted by, for messages.
    public let trust: String

    /// Where `scripts/build-uki --server-ca` (and `build-initramfs --server-ca`) put the CA bundle.
    public static let bakedCAFile = "/etc/wyrcan/server-ca.pem"
    /// An answer is a cmdline's worth of parameters; more is not an answer.
    public static let maximumAnswerBytes = 64 << 10

    /// The server `args` names, trusted by `caFile` (when it exists) and/or `args.serverPin`.
    /// Plain `http://` only when `wyr.insecure` names the server's HOST:PORT.
    public init(args: WyrcanArgs, caFile: String? = ConfigServer.bakedCAFile) throws(ConfigServerError) {
        guard let url = args.server else { throw .notConfigured }
        let authority = HTTPURL.authority(of: url)
        let caFile = caFile.flatMap { FileSystem.exists($0) ? $0 : nil }
        var options = Self.answerOptions
        if url.hasPrefix("http://") {
            guard args.insecureRegistries.contains(authority) else { throw .plainHTTP(server: url, authority: authority) }
            trust = "plain HTTP (wyr.insecure=\(authority))"
        } else {
            guard caFile != nil || args.serverPin != nil else { throw .noTrust(server: url) }
            options.httpsOnly = true
            options = options.trusting(caFile: caFile, pinnedPublicKey: args.serverPin)
            trust = [caFile.map { "the CA in \($0)" }, args.serverPin.map { _ in "the key in wyr.server_pin" }].compactMap { $0 }.joined(separator: " and ")
        }
        self.url = url
        self.options = options
    }

    public func configURL(for mac: MACAddress) -> String { "\(url)/v1/config/\(mac)" }

    /// Fetches this machine's parameters; `client` carries the connection.
    public func fetch(for mac: MACAddress, client: HTTPClient) throws(ConfigServerError) -> WyrcanArgs {
        try Self.fetchAnswer(configURL(for: mac), options: options, trust: trust, client: client, source: "wyr.server=\(url)")
    }

    /// The options of a fetch trusted by the system's CAs (`wyr.extra_args_url`).
    public static var answerOptions: HTTPOptions {
        var options = HTTPOptions()
        options.timeoutSeconds = 30
        options.maximumBufferedBytes = maximumAnswerBytes
        return options
    }

    /// GETs `url` and parses its answer; errors name `source` (`wyr.server=URL`,
    /// `wyr.extra_args_url=URL`).
    public static func fetchAnswer(_ url: String, options: HTTPOptions = answerOptions, trust: String = "the system's CAs",
                                   client: HTTPClient, source: String) throws(ConfigServerError) -> WyrcanArgs {
        let response: HTTPResponse
        do { response = try client.send(HTTPRequest(url: url, options: options)) } catch {
            throw .transport(source: source, trust: trust, error)
        }
        guard response.status == 200 else {
            throw .refused(source: source, status: response.status, detail: response.bodySummary, retryAfter: response.retryAfter)
        }
        return try parse(response.body, source: source)
    }

    /// An answer's text: parameters separated by spaces or lines, `#` comment lines skipped.
    public static func parse(_ body: [UInt8], source: String) throws(ConfigServerError) -> WyrcanArgs {
        let text = String(decoding: body, as: UTF8.self).split(whereSeparator: \.isNewline)
            .filter { !$0.hasPrefix("#") }.joined(separator: " ")
        do { return try WyrcanArgs(parsing: text) } catch {
            // The parameter is named, its value (perhaps a secret) is not.
            let name = error.description.prefix { $0 != "=" && $0 != ":" }
            throw .invalidAnswer(source: source, parameter: String(name))
        }
    }
}

/// Why the config server's answer could not be had. One line each, naming the server.
public enum ConfigServerError: RetryableError, CustomStringConvertible, Sendable {
    case notConfigured
    case plainHTTP(server: String, authority: String)
    case noTrust(server: String)
    /// `source`: the parameter that named the URL, with it (`wyr.server=URL`).
    case transport(source: String, trust: String, CurlError)
    case refused(source: String, status: Int, detail: String, retryAfter: Double?)
    case invalidAnswer(source: String, parameter: String)

    public var description: String {
        switch self {
        case .notConfigured: return "no wyr.server on the cmdline"
        case .plainHTTP(let server, let authority):
            return "wyr.server=\(server): plain HTTP would carry this machine's secrets in the clear; use https:// (or allow it with wyr.insecure=\(authority))"
        case .noTrust(let server):
            return "wyr.server=\(server): nothing to trust it by: no CA baked into this initramfs (\(ConfigServer.bakedCAFile); scripts/build-uki --server-ca FILE) and no wyr.server_pin=sha256//…"
        case .transport(let source, let trust, let error):
            let code = CURLcode(error.code)
            if code == CURLE_SSL_PINNEDPUBKEYNOTMATCH {
                return "\(source): the server's public key is not the one in wyr.server_pin; refusing it"
            }
            if code == CURLE_PEER_FAILED_VERIFICATION || code == CURLE_SSL_CACERT_BADFILE {
                return "\(source): the server's certificate is not trusted by \(trust) (\(error.message)); refusing it"
            }
            return "\(source): \(error.message)"
        case .refused(let source, let status, let detail, _):
            return "\(source): HTTP \(status)\(detail.isEmpty ? "" : ": \(detail)")"
        case .invalidAnswer(let source, let parameter):
            return "\(source): the answer has an invalid parameter \(Message.quoted(parameter, limit: 60)) (its value is not shown: it may be a secret)"
        }
    }

    public var isTransient: Bool {
        switch self {
        case .transport(_, _, let error): return error.isTransient
        case .refused(_, let status, _, _): return RetryPolicy.isTransient(status: status)
        default: return false
        }
    }

    public var retryAfter: Double? {
        if case .refused(_, _, _, let seconds) = self { return seconds }
        return nil
    }
}
