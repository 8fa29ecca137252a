import CCurl

/// A libcurl failure: the transfer could not complete (not an HTTP error status).
public struct CurlError: RetryableError, CustomStringConvertible, Sendable {
    public let code: UInt32
    public let message: String
    public let url: String

    public var description: String { url.isEmpty ? message : "\(url): \(message)" }

    /// A buffered response longer than the caller allows (`HTTPOptions.maximumBufferedBytes`).
    static func responseTooLarge(url: String, limit: Int) -> CurlError {
        CurlError(code: CURLE_FILESIZE_EXCEEDED.rawValue, message: "the response is larger than \(limit) bytes; refusing it", url: url)
    }

    /// A body that ended before it should have, or went on from the wrong place (retried).
    static func partialTransfer(_ message: String, url: String) -> CurlError {
        CurlError(code: CURLE_PARTIAL_FILE.rawValue, message: message, url: url)
    }

    /// Connection-level failures worth retrying (refused, reset, timed out, partial body).
    public var isTransient: Bool {
        switch CURLcode(code) {
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_OPERATION_TIMEDOUT,
             CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_PARTIAL_FILE, CURLE_GOT_NOTHING,
             // HTTP/2 streams reset mid-transfer (seen on large CDN downloads); a blob resumes.
             CURLE_HTTP2, CURLE_HTTP2_STREAM:
            return true
        case CURLE_SSL_CONNECT_ERROR:
            return !speaksPlainHTTP
        default:
            return false
        }
    }

    /// A TLS handshake answered in plain HTTP (OpenSSL's "wrong version number"): asking again
    /// gets the same answer.
    public var speaksPlainHTTP: Bool {
        CURLcode(code) == CURLE_SSL_CONNECT_ERROR && message.contains("wrong version number")
    }

    /// Whether the TLS handshake failed (a plain-HTTP peer, or a certificate problem).
    public var isTLSFailure: Bool {
        switch CURLcode(code) {
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE:
            return true
        default:
            return false
        }
    }
}

/// One libcurl easy handle. Options go through typed setters (the C API is variadic); C callbacks
/// reach Swift closures through an `Unmanaged` context pointer. A handle is used by one thread at a
/// time, and reused across requests so connections are kept alive.
public final class CurlEasy {
    private let handle: UnsafeMutableRawPointer
    private var headerList: UnsafeMutablePointer<curl_slist>? = nil
    private var url = ""
    private var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)

    private static let globalInit: Void = { _ = curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    public static var version: String { String(cString: curl_version()) }

    public init() throws(CurlError) {
        _ = Self.globalInit
        guard let h = curl_easy_init() else {
            throw CurlError(code: CURLE_FAILED_INIT.rawValue, message: "curl_easy_init failed", url: "")
        }
        handle = h
    }

    deinit {
        curl_easy_cleanup(handle)
        if let headerList { curl_slist_free_all(headerList) }
    }

    /// Clears every option so the handle can serve another request (connections stay cached).
    public func reset() {
        curl_easy_reset(handle)
        if let headerList { curl_slist_free_all(headerList) }
        headerList = nil
    }

    private func check(_ code: CURLcode) throws(CurlError) {
        guard code == CURLE_OK else {
            let detail = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            let text = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
            throw CurlError(code: code.rawValue, message: text, url: url)
        }
    }

    public func set(_ option: CURLoption, _ value: Int) throws(CurlError) {
        try check(wyr_curl_setopt_long(handle, option, value))
    }

    public func set(_ option: CURLoption, _ value: Bool) throws(CurlError) {
        try check(wyr_curl_setopt_long(handle, option, value ? 1 : 0))
    }

    public func set(_ option: CURLoption, offset value: Int64) throws(CurlError) {
        try check(wyr_curl_setopt_off(handle, option, curl_off_t(value)))
    }

    /// String options are copied by libcurl (since 7.17), so the Swift string may go away.
    public func set(_ option: CURLoption, _ value: String) throws(CurlError) {
        if option == CURLOPT_URL { url = value }
        try check(wyr_curl_setopt_string(handle, option, value))
    }

    public func setHeaders(_ headers: [String]) throws(CurlError) {
        if let headerList { curl_slist_free_all(headerList) }
        headerList = nil
        for header in headers { headerList = curl_slist_append(headerList, header) }
        try check(wyr_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, headerList))
    }

    public var responseCode: Int {
        var code = 0
        _ = wyr_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &code)
        return code
    }

    public var effectiveURL: String {
        var p: UnsafeMutablePointer<CChar>? = nil
        _ = wyr_curl_getinfo_string(handle, CURLINFO_EFFECTIVE_URL, &p)
        return p.map { String(cString: $0) } ?? url
    }

    /// Closures for one transfer. `onData` returns false to abort the transfer.
    final class Sinks {
        var onHeader: (String) -> Void
        var onData: (UnsafeRawBufferPointer) -> Bool
        var upload: (UnsafeMutableRawBufferPointer) -> Int
        init(onHeader: @escaping (String) -> Void, onData: @escaping (UnsafeRawBufferPointer) -> Bool,
             upload: @escaping (UnsafeMutableRawBufferPointer) -> Int) {
            self.onHeader = onHeader
            self.onData = onData
            self.upload = upload
        }
    }

    /// Runs the transfer configured so far, streaming response headers (one raw line at a time)
    /// and body chunks to the closures. Throws on transport errors; HTTP statuses are not errors.
    public func perform(
        onHeader: @escaping (String) -> Void = { _ in },
        onData: @escaping (UnsafeRawBufferPointer) -> Bool,
        upload: ((UnsafeMutableRawBufferPointer) -> Int)? = nil
    ) throws(CurlError) {
        let sinks = Sinks(onHeader: onHeader, onData: onData, upload: upload ?? { _ in 0 })
        let context = Unmanaged.passRetained(sinks)
        defer { context.release() }
        errorBuffer.withUnsafeMutableBufferPointer { buffer in
            buffer[0] = 0
            _ = wyr_curl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, buffer.baseAddress)
        }
        try check(wyr_curl_setopt_data_cb(handle, CURLOPT_WRITEFUNCTION) { ptr, size, count, user in
            let sinks = Unmanaged<Sinks>.fromOpaque(user!).takeUnretainedValue()
            let length = size * count
            return sinks.onData(UnsafeRawBufferPointer(start: ptr, count: length)) ? length : 0
        })
        try check(wyr_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, context.toOpaque()))
        try check(wyr_curl_setopt_data_cb(handle, CURLOPT_HEADERFUNCTION) { ptr, size, count, user in
            let sinks = Unmanaged<Sinks>.fromOpaque(user!).takeUnretainedValue()
            let length = size * count
            let line = String(decoding: UnsafeRawBufferPointer(start: ptr, count: length), as: UTF8.self)
            sinks.onHeader(line)
            return length
        })
        try check(wyr_curl_setopt_pointer(handle, CURLOPT_HEADERDATA, context.toOpaque()))
        if upload != nil {
            try check(wyr_curl_setopt_data_cb(handle, CURLOPT_READFUNCTION) { ptr, size, count, user in
                let sinks = Unmanaged<Sinks>.fromOpaque(user!).takeUnretainedValue()
                return sinks.upload(UnsafeMutableRawBufferPointer(start: ptr, count: size * count))
            })
            try check(wyr_curl_setopt_pointer(handle, CURLOPT_READDATA, context.toOpaque()))
        }
        let code = errorBuffer.withUnsafeMutableBufferPointer { _ in curl_easy_perform(handle) }
        try check(code)
    }
}

extension CurlEasy {
    /// An upload callback that hands out `body` in order, as libcurl asks for it.
    public static func reader(_ body: [UInt8]) -> (UnsafeMutableRawBufferPointer) -> Int {
        var offset = 0
        return { buffer in
            let n = min(buffer.count, body.count - offset)
            body.withUnsafeBytes { src in
                buffer.baseAddress!.copyMemory(from: src.baseAddress! + offset, byteCount: n)
            }
            offset += n
            return n
        }
    }
}

