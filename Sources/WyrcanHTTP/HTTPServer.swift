import CMicroHTTPD
#if canImport(Glibc)
import Glibc
#endif

/// A request as the handler sees it; the body is complete.
public struct HTTPServerRequest: Sendable {
    public var method: String
    /// The path, percent-decoded by libmicrohttpd, without the query string.
    public var path: String
    /// Query arguments in order.
    public var query: [(name: String, value: String)]
    /// Header names lowercased.
    public var headers: [String: String]
    public var body: [UInt8]
    /// Whether the request came over TLS (an HTTPS listener).
    public var isTLS: Bool

    public init(method: String, path: String, query: [(name: String, value: String)] = [], headers: [String: String] = [:], body: [UInt8] = [], isTLS: Bool = false) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.isTLS = isTLS
    }

    public func queryValue(_ name: String) -> String? { query.first { $0.name == name }?.value }
    public func header(_ name: String) -> String? { headers[name.lowercased()] }
}

public struct HTTPServerResponse: Sendable {
    public enum Body: Sendable {
        case bytes([UInt8])
        /// A byte range of a file, sent with sendfile() on plain HTTP. The descriptor is owned
        /// (closed) by the server once the response is handed over.
        case file(descriptor: Int32, offset: Int64, length: Int64)
    }

    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: Body

    public init(status: Int, headers: [(name: String, value: String)] = [], body: Body = .bytes([])) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public static func text(_ status: Int, _ text: String, contentType: String = "text/plain; charset=utf-8") -> Self {
        HTTPServerResponse(status: status, headers: [("Content-Type", contentType)], body: .bytes(Array(text.utf8)))
    }
}

public struct HTTPServerError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}

/// An HTTP/1.1 server on libmicrohttpd: an internal epoll thread pool calls `handler` on its own
/// threads, so the handler must be `Sendable`. Optional TLS (GnuTLS, as Debian builds MHD) takes a
/// PEM certificate/key and a GnuTLS priority string that selects protocols and cipher suites.
public final class HTTPServer: @unchecked Sendable {
    public struct TLS: Sendable {
        public var certificatePEM: String
        public var keyPEM: String
        public var priorities: String
        /// PEM (PKCS#3) Diffie-Hellman parameters for DHE key exchange with clients that name no
        /// group of their own (UEFI firmware); nil: no DHE.
        public var dhParametersPEM: String?
        public init(certificatePEM: String, keyPEM: String, priorities: String, dhParametersPEM: String? = nil) {
            self.certificatePEM = certificatePEM
            self.keyPEM = keyPEM
            self.priorities = priorities
            self.dhParametersPEM = dhParametersPEM
        }

        /// RFC 7919's ffdhe2048 group, the one TLS 1.3 and RFC 7919 clients ask for by name.
        public static let ffdhe2048PEM = """
            -----BEGIN DH PARAMETERS-----
            MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
            +8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
            87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
            YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
            7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
            ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
            -----END DH PARAMETERS-----

            """
    }

    public struct Configuration: Sendable {
        public var host: String
        public var port: UInt16
        public var threads: Int
        public var connectionLimit: Int
        /// Connections one client address may hold at once (0: no limit), so that one machine
        /// holding connections open cannot take them all.
        public var perAddressLimit: Int
        public var maximumBodyBytes: Int
        public var tls: TLS?
        public init(host: String = "127.0.0.1", port: UInt16 = 0, threads: Int = 4, connectionLimit: Int = 4096,
                    perAddressLimit: Int = 0, maximumBodyBytes: Int = 1 << 20, tls: TLS? = nil) {
            self.host = host
            self.port = port
            self.threads = threads
            self.connectionLimit = connectionLimit
            self.perAddressLimit = perAddressLimit
            self.maximumBodyBytes = maximumBodyBytes
            self.tls = tls
        }
    }

    public typealias Handler = @Sendable (HTTPServerRequest) -> HTTPServerResponse

    /// Per-request state kept by libmicrohttpd between callbacks.
    final class PendingRequest {
        var body: [UInt8] = []
        var tooLarge = false
    }

    let handler: Handler
    let configuration: Configuration
    private var daemon: OpaquePointer?
    /// C strings libmicrohttpd may reference while running.
    private var retainedStrings: [UnsafeMutablePointer<CChar>] = []
    public private(set) var port: UInt16 = 0

    public init(_ configuration: Configuration, handler: @escaping Handler) throws(HTTPServerError) {
        self.configuration = configuration
        self.handler = handler
        try start()
    }

    deinit {
        stop()
        retainedStrings.forEach { free($0) }
    }

    private func keep(_ s: String) -> UnsafeMutablePointer<CChar> {
        let p = strdup(s)!
        retainedStrings.append(p)
        return p
    }

    private func start() throws(HTTPServerError) {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = configuration.port.bigEndian
        guard inet_pton(AF_INET, configuration.host, &address.sin_addr) == 1 else {
            throw HTTPServerError(message: "listen address '\(configuration.host)' is not an IPv4 address")
        }
        var flags = MHD_USE_INTERNAL_POLLING_THREAD.rawValue | MHD_USE_EPOLL.rawValue | MHD_USE_ERROR_LOG.rawValue
        var options: [MHD_OptionItem] = [
            wyr_mhd_opt_uint(.THREAD_POOL_SIZE, UInt32(max(1, configuration.threads))),
            wyr_mhd_opt_uint(.CONNECTION_LIMIT, UInt32(configuration.connectionLimit)),
            wyr_mhd_opt_uint(.PER_IP_CONNECTION_LIMIT, UInt32(configuration.perAddressLimit)),
            wyr_mhd_opt_uint(.CONNECTION_TIMEOUT, 60),
            wyr_mhd_opt_uint(.LISTEN_BACKLOG_SIZE, 1024),
            wyr_mhd_opt_completed({ _, _, requestContext, _ in
                if let slot = requestContext, let pending = slot.pointee {
                    Unmanaged<PendingRequest>.fromOpaque(pending).release()
                    slot.pointee = nil
                }
            }, nil),
        ]
        if let tls = configuration.tls {
            flags |= MHD_USE_TLS.rawValue
            options.append(wyr_mhd_opt_ptr(.HTTPS_MEM_CERT, keep(tls.certificatePEM)))
            options.append(wyr_mhd_opt_ptr(.HTTPS_MEM_KEY, keep(tls.keyPEM)))
            options.append(wyr_mhd_opt_ptr(.HTTPS_PRIORITIES, keep(tls.priorities)))
            if let dh = tls.dhParametersPEM { options.append(wyr_mhd_opt_ptr(.HTTPS_MEM_DHPARAMS, keep(dh))) }
        }
        let context = Unmanaged.passUnretained(self).toOpaque()
        daemon = withUnsafePointer(to: &address) { addressPointer in
            options.append(wyr_mhd_opt_ptr(.SOCK_ADDR, UnsafeRawPointer(addressPointer)))
            options.append(wyr_mhd_opt_end())
            return options.withUnsafeMutableBufferPointer { buffer in
                wyr_mhd_start(flags, configuration.port, HTTPServer.accessHandler, context, buffer.baseAddress)
            }
        }
        guard let daemon else {
            let reason = configuration.tls == nil ? "" : " (check the certificate, key and TLS priorities)"
            throw HTTPServerError(message: "cannot listen on \(configuration.host):\(configuration.port)\(reason)")
        }
        port = wyr_mhd_bound_port(daemon)
    }

    /// Stops accepting and waits for the worker threads.
    public func stop() {
        if let daemon { MHD_stop_daemon(daemon) }
        daemon = nil
    }

    static let accessHandler: MHD_AccessHandlerCallback = { cls, connection, url, method, _, uploadData, uploadSize, requestContext in
        let server = Unmanaged<HTTPServer>.fromOpaque(cls!).takeUnretainedValue()
        guard let requestContext, let uploadSize else { return .NO }
        guard let pendingPointer = requestContext.pointee else {
            requestContext.pointee = Unmanaged.passRetained(PendingRequest()).toOpaque()
            return .YES
        }
        let pending = Unmanaged<PendingRequest>.fromOpaque(pendingPointer).takeUnretainedValue()
        if uploadSize.pointee > 0 {
            if pending.body.count + uploadSize.pointee > server.configuration.maximumBodyBytes {
                pending.tooLarge = true
            } else if let uploadData {
                pending.body.append(contentsOf: UnsafeRawBufferPointer(start: uploadData, count: uploadSize.pointee))
            }
            uploadSize.pointee = 0
            return .YES
        }
        let response: HTTPServerResponse
        if pending.tooLarge {
            response = .text(413, "request body larger than \(server.configuration.maximumBodyBytes) bytes\n")
        } else {
            let request = HTTPServerRequest(
                method: String(cString: method!), path: String(cString: url!),
                query: values(connection, .GET_ARGUMENT_KIND).map { ($0.0, $0.1) },
                headers: Dictionary(values(connection, .HEADER_KIND).map { ($0.0.lowercased(), $0.1) }, uniquingKeysWith: { a, b in "\(a), \(b)" }),
                body: pending.body, isTLS: server.configuration.tls != nil)
            response = server.handler(request)
        }
        return queue(response, on: connection, tls: server.configuration.tls != nil)
    }

    private static func values(_ connection: OpaquePointer?, _ kind: MHD_ValueKind) -> [(String, String)] {
        final class Collector { var items: [(String, String)] = [] }
        let collector = Collector()
        let unmanaged = Unmanaged.passUnretained(collector)
        _ = MHD_get_connection_values(connection, kind, { cls, _, key, value in
            let c = Unmanaged<Collector>.fromOpaque(cls!).takeUnretainedValue()
            c.items.append((key.map { String(cString: $0) } ?? "", value.map { String(cString: $0) } ?? ""))
            return .YES
        }, unmanaged.toOpaque())
        return withExtendedLifetime(collector) { collector.items }
    }

    /// Bytes read from a file per step for TLS responses. libmicrohttpd's own file responses read
    /// 4 KiB at a time, fine with sendfile (plain HTTP) but one small TLS record per read under
    /// TLS; larger reads let GnuTLS fill whole 16 KiB records.
    static let tlsFileBlock = 256 << 10

    /// Where a TLS file response reads from (freed, and the descriptor closed, with the response).
    struct FileSource { var fd: Int32; var offset: UInt64 }

    private static func queue(_ response: HTTPServerResponse, on connection: OpaquePointer?, tls: Bool) -> MHD_Result {
        let mhdResponse: OpaquePointer?
        switch response.body {
        case .bytes(let bytes):
            mhdResponse = bytes.withUnsafeBytes {
                MHD_create_response_from_buffer(bytes.count, UnsafeMutableRawPointer(mutating: $0.baseAddress), .RESPMEM_MUST_COPY)
            }
        case .file(let fd, let offset, let length) where tls:
            let source = UnsafeMutablePointer<FileSource>.allocate(capacity: 1)
            source.initialize(to: FileSource(fd: fd, offset: UInt64(offset)))
            mhdResponse = MHD_create_response_from_callback(UInt64(length), tlsFileBlock, { cls, position, buffer, max in
                let source = cls!.assumingMemoryBound(to: FileSource.self).pointee
                let n = pread(source.fd, buffer, max, off_t(source.offset + position))
                return n > 0 ? n : (n == 0 ? -1 : -2)   // end of stream / end with error
            }, source, { cls in
                let source = cls!.assumingMemoryBound(to: FileSource.self)
                close(source.pointee.fd)
                source.deinitialize(count: 1)
                source.deallocate()
            })
            if mhdResponse == nil {
                close(fd)
                source.deinitialize(count: 1)
                source.deallocate()
            }
        case .file(let fd, let offset, let length):
            mhdResponse = MHD_create_response_from_fd_at_offset64(UInt64(length), fd, UInt64(offset))
            if mhdResponse == nil { close(fd) }
        }
        guard let mhdResponse else { return .NO }
        for (name, value) in response.headers {
            _ = MHD_add_response_header(mhdResponse, name, value)
        }
        let result = MHD_queue_response(connection, UInt32(response.status), mhdResponse)
        MHD_destroy_response(mhdResponse)
        return result
    }
}
