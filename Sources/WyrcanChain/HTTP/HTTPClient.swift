import CCurl

/// The one HTTP request layer: the registry client, the S3 client and the boot agent's fetches
/// (reports, extra parameters, its config) all send through it. It owns one libcurl handle,
/// reused so connections stay alive; one thread uses it at a time.
public final class HTTPClient {
    let curl: CurlEasy

    public init() throws(CurlError) {
        curl = try CurlEasy()
    }

    /// The URL that answered last, after redirects.
    public var effectiveURL: String { curl.effectiveURL }

    /// Sends `request`. A successful (2xx) body goes to `receive` when given — it returns false to
    /// stop the transfer, and the response comes back with `stoppedByReceiver` — else it is
    /// buffered; any other body is buffered for the error message, up to the options' limit.
    /// `onHead` sees the status and headers once, before the body's first byte. HTTP statuses
    /// are answers, not errors: only a failed transfer throws.
    public func send(
        _ request: HTTPRequest, onHead: ((HTTPResponse) -> Void)? = nil,
        receive: ((UnsafeRawBufferPointer) -> Bool)? = nil
    ) throws(CurlError) -> HTTPResponse {
        try configure(request)
        let limit = request.options.maximumBufferedBytes
        var response = HTTPResponse(status: 0)
        var announced = false
        var tooLarge = false
        var errorBodyCut = false
        do throws(CurlError) {
            try curl.perform(
                onHeader: { line in
                    response.take(headerLine: line)
                    if line.hasPrefix("HTTP/") { announced = false }
                },
                onData: { chunk in
                    if !announced {
                        announced = true
                        onHead?(response)
                    }
                    if response.isSuccess, let receive {
                        if receive(chunk) { return true }
                        response.stoppedByReceiver = true
                        return false
                    }
                    guard response.body.count + chunk.count <= limit else {
                        // An error body is only a message: its start is kept and the transfer
                        // ends there (a server may send one without end). A wanted body must be whole.
                        if response.isSuccess { tooLarge = true; return false }
                        response.body.append(contentsOf: chunk.prefix(max(0, limit - response.body.count)))
                        errorBodyCut = true
                        return false
                    }
                    response.body.append(contentsOf: chunk)
                    return true
                },
                upload: request.body.map(CurlEasy.reader))
        } catch {
            if response.stoppedByReceiver || errorBodyCut { return response }
            if tooLarge { throw .responseTooLarge(url: request.url, limit: limit) }
            throw error
        }
        if response.status == 0 { response.status = curl.responseCode }
        return response
    }

    private func configure(_ request: HTTPRequest) throws(CurlError) {
        let options = request.options
        curl.reset()
        try curl.set(CURLOPT_URL, request.url)
        try curl.set(CURLOPT_NOSIGNAL, true)
        try curl.set(CURLOPT_CONNECTTIMEOUT, options.connectTimeoutSeconds)
        if let seconds = options.timeoutSeconds { try curl.set(CURLOPT_TIMEOUT, seconds) }
        if let seconds = options.stallSeconds {
            try curl.set(CURLOPT_LOW_SPEED_LIMIT, 1)
            try curl.set(CURLOPT_LOW_SPEED_TIME, seconds)
        }
        if options.followRedirects {
            try curl.set(CURLOPT_FOLLOWLOCATION, true)
            try curl.set(CURLOPT_MAXREDIRS, options.maximumRedirects)
        }
        if options.httpsOnly {
            try curl.set(CURLOPT_PROTOCOLS_STR, "https")
            try curl.set(CURLOPT_REDIR_PROTOCOLS_STR, "https")
        }
        if let caFile = options.caFile { try curl.set(CURLOPT_CAINFO, caFile) }
        if let pin = options.pinnedPublicKey {
            try curl.set(CURLOPT_PINNEDPUBLICKEY, pin)
            // A pin without a CA trusts the key alone, whoever signed its certificate (a
            // self-signed server): the pin is the check.
            if options.caFile == nil {
                try curl.set(CURLOPT_SSL_VERIFYPEER, false)
                try curl.set(CURLOPT_SSL_VERIFYHOST, false)
            }
        }
        if let bytes = options.receiveBufferBytes { try curl.set(CURLOPT_BUFFERSIZE, bytes) }
        // Bodies are digests' input: never let a server re-encode them.
        try curl.set(CURLOPT_ACCEPT_ENCODING, "identity")
        try curl.setHeaders(request.headers)
        switch request.method {
        case "GET": break
        case "HEAD": try curl.set(CURLOPT_NOBODY, true)
        case "PUT" where request.body != nil: break
        default: try curl.set(CURLOPT_CUSTOMREQUEST, request.method)
        }
        if let body = request.body {
            try curl.set(CURLOPT_UPLOAD, true)
            try curl.set(CURLOPT_INFILESIZE_LARGE, offset: Int64(body.count))
        }
    }
}
