#if canImport(Glibc)
import Glibc
#endif

/// An S3-compatible object store (AWS S3, MinIO, rclone serve s3, moto, Garage…) reached with
/// path-style URLs and SigV4. Thread-safe: each request borrows one of a pool of libcurl handles,
/// so concurrent transfers reuse their connections.
public final class S3Client: @unchecked Sendable {
    public let endpoint: String
    let scheme: String
    let host: String
    let basePath: String
    let signer: S3Signer
    /// How requests reach the endpoint: its CA; stalls fail (and are retried), a long healthy
    /// transfer does not time out.
    let options: HTTPOptions
    /// How transient failures (connection errors, 429, 5xx, SlowDown) are retried.
    public var retry = RetryPolicy.s3
    private let pool = Locked<[HTTPClient]>([])

    public init(alias: S3Alias, region: String = "us-east-1", caFile: String? = nil) throws(S3Error) {
        let url = alias.url
        guard let schemeEnd = url[...].range(of: "://") else { throw .badEndpoint("s3 alias \(alias.alias): URL '\(url)' has no scheme") }
        scheme = String(url[..<schemeEnd.lowerBound])
        let rest = url[schemeEnd.upperBound...]
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        // (Without its default port: curl leaves that out of the Host header, which is signed.)
        let host = HTTPURL.authority(of: url)
        self.host = host
        var path = String(rest[slash...])
        while path.hasSuffix("/") { path.removeLast() }
        basePath = path
        guard scheme == "http" || scheme == "https", !host.isEmpty else {
            throw .badEndpoint("s3 alias \(alias.alias): URL '\(url)' must be http(s)://HOST[:PORT]")
        }
        endpoint = "\(alias.alias) (\(scheme)://\(host))"
        signer = S3Signer(accessKey: alias.accessKey, secretKey: alias.secretKey, region: region)
        var options = HTTPOptions().trusting(caFile: caFile)
        options.timeoutSeconds = nil
        options.stallSeconds = 60
        self.options = options
    }

    /// Where a successful (2xx) response body goes; error bodies are always buffered.
    struct BodySink {
        /// Called before each attempt (truncate what a failed attempt wrote).
        var begin: () throws(S3Error) -> Void
        var write: (UnsafeRawBufferPointer) throws(S3Error) -> Void
        /// Called after a complete 2xx body; throws to reject it (e.g. a digest mismatch: retried).
        var finish: () throws(S3Error) -> Void
    }

    /// One signed request, retried by `retry` on transient failures. Non-2xx statuses throw.
    @discardableResult
    func send(
        _ method: String, bucket: String, key: String = "", query: [(String, String)] = [],
        headers: [(String, String)] = [], body: [UInt8]? = nil, payloadHash: String? = nil,
        operation: String, sink: BodySink? = nil
    ) throws(S3Error) -> HTTPResponse {
        try retry.run { (_) throws(S3Error) in
            try once(method, bucket: bucket, key: key, query: query, headers: headers, body: body,
                     payloadHash: payloadHash, operation: operation, sink: sink)
        }
    }

    private func once(
        _ method: String, bucket: String, key: String, query: [(String, String)], headers: [(String, String)],
        body: [UInt8]?, payloadHash: String?, operation: String, sink: BodySink?
    ) throws(S3Error) -> HTTPResponse {
        let path = basePath + "/" + bucket + (key.isEmpty ? "" : "/" + key)
        let hash = payloadHash ?? (body.map { $0.isEmpty ? S3Signer.emptyPayload : S3Signer.unsignedPayload } ?? S3Signer.emptyPayload)
        let signed: [(String, String)]
        do throws(CryptoError) {
            signed = try signer.sign(method: method, host: host, path: path, query: query, headers: headers, payloadHash: hash)
        } catch { throw .crypto(error) }
        let encodedQuery = query.map { "\($0.0.percentEncoded())=\($0.1.percentEncoded())" }.joined(separator: "&")
        let url = "\(scheme)://\(host)\(path.percentEncoded(keepingSlash: true))" + (query.isEmpty ? "" : "?" + encodedQuery)
        // No "Expect: 100-continue" round trip before each upload.
        let request = HTTPRequest(method, url: url, headers: signed.map { "\($0.0): \($0.1)" } + ["Expect:"], body: body, options: options)

        let client = borrow()
        defer { giveBack(client) }
        var sinkError: S3Error? = nil
        try sink?.begin()
        let response: HTTPResponse
        do throws(CurlError) {
            response = try client.send(request, receive: sink.map { sink in
                { chunk in
                    do throws(S3Error) { try sink.write(chunk) } catch { sinkError = error; return false }
                    return true
                }
            })
        } catch {
            throw .transport(endpoint: endpoint, operation: operation, error)
        }
        if let sinkError { throw sinkError }
        guard response.isSuccess else {
            let text = String(decoding: response.body, as: UTF8.self)
            throw .http(endpoint: endpoint, operation: operation, status: response.status,
                        code: S3XML.value("Code", in: text) ?? "", message: S3XML.value("Message", in: text) ?? "",
                        retryAfter: response.retryAfter)
        }
        try sink?.finish()
        return response
    }

    private func borrow() -> HTTPClient {
        if let client = pool.withLock({ $0.popLast() }) { return client }
        // curl_easy_init fails only when out of memory.
        return try! HTTPClient()
    }

    private func giveBack(_ client: HTTPClient) {
        pool.withLock { $0.append(client) }
    }
}
