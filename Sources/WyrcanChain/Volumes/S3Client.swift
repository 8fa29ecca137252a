#if canImport(Glibc)
import Glibc
#endif
import CCurl

/// An S3-compatible object store (AWS S3, MinIO, rclone serve s3, moto, Garage…) reached with
/// path-style URLs and SigV4. Thread-safe: each request borrows one of a pool of libcurl handles,
/// so concurrent transfers reuse their connections.
public final class S3Client: @unchecked Sendable {
    public let endpoint: String
    let scheme: String
    let host: String
    let basePath: String
    let signer: S3Signer
    let caFile: String?
    public var maxAttempts = 5
    private let pool = Locked<[CurlEasy]>([])

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
        self.caFile = caFile
    }

    /// A response whose body went to a sink rather than memory.
    struct Reply {
        var status: Int
        var headers: [(name: String, value: String)]
        var body: [UInt8]

        func header(_ name: String) -> String? { HTTPResponse(status: status, headers: headers, body: []).header(name) }
    }

    /// Where a successful (2xx) response body goes; error bodies are always buffered.
    struct BodySink {
        /// Called before each attempt (truncate what a failed attempt wrote).
        var begin: () throws(S3Error) -> Void
        var write: (UnsafeRawBufferPointer) throws(S3Error) -> Void
        /// Called after a complete 2xx body; throws to reject it (e.g. a digest mismatch: retried).
        var finish: (Reply) throws(S3Error) -> Void
    }

    /// One signed request, retried with backoff on transient failures. Non-2xx statuses throw.
    @discardableResult
    func send(
        _ method: String, bucket: String, key: String = "", query: [(String, String)] = [],
        headers: [(String, String)] = [], body: [UInt8]? = nil, payloadHash: String? = nil,
        operation: String, sink: BodySink? = nil
    ) throws(S3Error) -> Reply {
        var attempt = 0
        while true {
            attempt += 1
            do throws(S3Error) {
                let reply = try once(method, bucket: bucket, key: key, query: query, headers: headers, body: body,
                                     payloadHash: payloadHash, operation: operation, sink: sink)
                return reply
            } catch {
                guard error.isTransient, attempt < maxAttempts else { throw error }
                usleep(UInt32(min(8.0, 0.25 * Double(1 << attempt)) * 1_000_000))
            }
        }
    }

    private func once(
        _ method: String, bucket: String, key: String, query: [(String, String)], headers: [(String, String)],
        body: [UInt8]?, payloadHash: String?, operation: String, sink: BodySink?
    ) throws(S3Error) -> Reply {
        let path = basePath + "/" + bucket + (key.isEmpty ? "" : "/" + key)
        let hash = payloadHash ?? (body.map { $0.isEmpty ? S3Signer.emptyPayload : S3Signer.unsignedPayload } ?? S3Signer.emptyPayload)
        let signed: [(String, String)]
        do throws(CryptoError) {
            signed = try signer.sign(method: method, host: host, path: path, query: query, headers: headers, payloadHash: hash)
        } catch { throw .crypto(error) }
        let encodedQuery = query.map { "\(S3Signer.encode($0.0, keepSlash: false))=\(S3Signer.encode($0.1, keepSlash: false))" }
            .joined(separator: "&")
        let url = "\(scheme)://\(host)\(S3Signer.encode(path, keepSlash: true))" + (query.isEmpty ? "" : "?" + encodedQuery)

        let curl = borrow()
        defer { giveBack(curl) }
        var status = 0
        var responseHeaders: [(name: String, value: String)] = []
        var buffered: [UInt8] = []
        var sinkError: S3Error? = nil
        try sink?.begin()
        do throws(CurlError) {
            curl.reset()
            try curl.set(CURLOPT_URL, url)
            if let caFile { try curl.set(CURLOPT_CAINFO, caFile) }
            try curl.set(CURLOPT_NOSIGNAL, true)
            try curl.set(CURLOPT_CONNECTTIMEOUT, 15)
            // A stalled transfer fails (and is retried); a long healthy one does not time out.
            try curl.set(CURLOPT_LOW_SPEED_LIMIT, 1)
            try curl.set(CURLOPT_LOW_SPEED_TIME, 60)
            // No "Expect: 100-continue" round trip before each upload.
            try curl.setHeaders(signed.map { "\($0.0): \($0.1)" } + ["Expect:"])
            switch method {
            case "GET": break
            case "HEAD": try curl.set(CURLOPT_NOBODY, true)
            case "PUT": break
            default: try curl.set(CURLOPT_CUSTOMREQUEST, method)
            }
            if let body {
                try curl.set(CURLOPT_UPLOAD, true)
                try curl.set(CURLOPT_INFILESIZE_LARGE, offset: Int64(body.count))
            }
            try curl.perform(
                onHeader: { line in
                    if line.hasPrefix("HTTP/") {
                        let parts = line.split(separator: " ")
                        status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
                    }
                    HTTPResponse.parseHeaderLine(line, into: &responseHeaders)
                },
                onData: { chunk in
                    guard (200..<300).contains(status), let sink else {
                        buffered.append(contentsOf: chunk)
                        return true
                    }
                    do throws(S3Error) { try sink.write(chunk) } catch { sinkError = error; return false }
                    return true
                },
                upload: body.map(CurlEasy.reader))
        } catch {
            if let sinkError { throw sinkError }
            throw .transport(endpoint: endpoint, operation: operation, error)
        }
        if let sinkError { throw sinkError }
        status = curl.responseCode
        guard (200..<300).contains(status) else {
            let text = String(decoding: buffered, as: UTF8.self)
            throw .http(endpoint: endpoint, operation: operation, status: status,
                        code: S3XML.value("Code", in: text) ?? "", message: S3XML.value("Message", in: text) ?? "")
        }
        let reply = Reply(status: status, headers: responseHeaders, body: sink == nil ? buffered : [])
        try sink?.finish(reply)
        return reply
    }

    private func borrow() -> CurlEasy {
        if let handle = pool.withLock({ $0.popLast() }) { return handle }
        // curl_easy_init fails only when out of memory.
        return try! CurlEasy()
    }

    private func giveBack(_ handle: CurlEasy) {
        pool.withLock { $0.append(handle) }
    }
}
