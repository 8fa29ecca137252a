import CCurl
import Synchronization
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Bearer tokens shared by every transfer of one pull (one client per thread).
public final class TokenCache: Sendable {
    private let tokens = Mutex<[String: String]>([:])
    public init() {}
    func get(_ key: String) -> String? { tokens.withLock { $0[key] } }
    func set(_ key: String, _ value: String) { tokens.withLock { $0[key] = value } }
}

/// An OCI distribution (v2) client for one repository, over libcurl. Not thread-safe: create one
/// per thread (they can share a `TokenCache`). Split by concern: +Auth (challenges, tokens),
/// +Fetch (manifests, blobs), +Error.
public final class RegistryClient {
    public let reference: Reference
    let options: RegistryOptions
    let tokens: TokenCache
    let curl: CurlEasy

    public init(reference: Reference, options: RegistryOptions, tokens: TokenCache = TokenCache()) throws(RegistryError) {
        self.reference = reference
        self.options = options
        self.tokens = tokens
        do { curl = try CurlEasy() } catch { throw .transport(error) }
    }

    /// Hosts to try: the registry's mirrors first, then the registry itself.
    var hosts: [String] { (options.mirrors[reference.registry] ?? []) + [reference.apiHost] }

    /// Whether `host` is a mirror rather than the image's registry.
    func isMirror(_ host: String) -> Bool { host != reference.apiHost }

    /// The name `host` goes by in options and messages: the registry's (`docker.io`) or the mirror's.
    func registryName(_ host: String) -> String { isMirror(host) ? host : reference.registry }

    /// The CA bundle for HTTPS to `host`: the one given for it, else the one for every registry.
    func caFile(host: String) -> String? {
        options.caFiles[host] ?? options.caFiles[registryName(host)] ?? options.caFile
    }

    func url(host: String, _ path: String) -> String {
        let scheme = options.isInsecure(host) || options.isInsecure(reference.registry) && host == reference.apiHost ? "http" : "https"
        return "\(scheme)://\(host)/v2/\(reference.repository)/\(path)"
    }

    /// One request with authentication: on a 401 challenge, obtains a token (or uses Basic
    /// credentials) and repeats the request once. Successful (2xx) bodies go to `onData` when
    /// given; error bodies are always buffered for the message.
    func exchange(
        host: String, url: String, headers: [String], onData: ((UnsafeRawBufferPointer) -> Bool)? = nil,
        onResponse: ((HTTPResponse) -> Void)? = nil, maximumBody: Int = 8 << 20
    ) throws(RegistryError) -> HTTPResponse {
        var authorization = authorizationHeader(host: host)
        for round in 0..<2 {
            var result = HTTPResponse(status: 0, headers: [], body: [])
            var aborted = false
            do {
                curl.reset()
                try curl.set(CURLOPT_URL, url)
                try curl.set(CURLOPT_NOSIGNAL, true)
                try curl.set(CURLOPT_FOLLOWLOCATION, true)
                try curl.set(CURLOPT_MAXREDIRS, 10)
                try curl.set(CURLOPT_CONNECTTIMEOUT, 20)
                // A stalled transfer (< 1 byte/s for 60 s) is a transport error, so it is retried.
                try curl.set(CURLOPT_LOW_SPEED_LIMIT, 1)
                try curl.set(CURLOPT_LOW_SPEED_TIME, 60)
                try curl.set(CURLOPT_ACCEPT_ENCODING, "identity")
                // Blobs: 256 KiB per read from the socket instead of 16 KiB (a 300 MB image:
                // ≈ 1 100 reads instead of ≈ 19 000).
                if onData != nil { try curl.set(CURLOPT_BUFFERSIZE, 256 << 10) }
                if let ca = caFile(host: host) { try curl.set(CURLOPT_CAINFO, ca) }
                try curl.setHeaders(headers + (authorization.map { [$0] } ?? []))
                var announced = false
                try curl.perform(
                    onHeader: { line in
                        if line.hasPrefix("HTTP/") {
                            result.headers.removeAll()
                            let parts = line.split(separator: " ")
                            result.status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
                            announced = false
                        } else {
                            HTTPResponse.parseHeaderLine(line, into: &result.headers)
                        }
                    },
                    onData: { chunk in
                        if !announced {
                            announced = true
                            onResponse?(result)
                        }
                        if (200..<300).contains(result.status), let onData {
                            if !onData(chunk) { aborted = true; return false }
                            return true
                        }
                        guard result.body.count + chunk.count <= maximumBody else { return false }
                        result.body.append(contentsOf: chunk)
                        return true
                    })
            } catch {
                if aborted { return result }
                throw .transport(error)
            }
            // A 401 after a redirect to another host (a CDN) is that host's: our credentials
            // are not for it (libcurl drops our Authorization header there, for the same reason).
            let answeredBy = HTTPURL.authority(of: curl.effectiveURL)
            if result.status == 401, answeredBy.lowercased() != HTTPURL.authority(of: url).lowercased() {
                throw .unauthorized(registry: registryName(host), detail: "HTTP 401 from \(answeredBy) after a redirect")
            }
            if result.status == 401 && round == 0,
               let next = try authorize(host: host, challenge: Self.preferredChallenge(result))
            {
                authorization = next
                continue
            }
            return result
        }
        throw .unauthorized(registry: registryName(host), detail: "the registry refused the credentials")
    }

    /// The challenge to answer when a 401 brings several (`WWW-Authenticate` repeated): Bearer
    /// first, since it also works without credentials; else the first one.
    static func preferredChallenge(_ response: HTTPResponse) -> String? {
        let challenges = response.headers.filter { $0.name == "www-authenticate" }.map(\.value)
        return challenges.first { $0.trimming(" ").lowercased().hasPrefix("bearer ") } ?? challenges.first
    }

    /// Runs `body` against `host` while it fails transiently, with exponential backoff (or the
    /// server's `Retry-After`, carried by the error): `options.attempts` times for the registry,
    /// once for a mirror (the next host is the fallback, so a dead mirror costs no backoff).
    func withRetries<T>(host: String, _ body: () throws(RegistryError) -> T) throws(RegistryError) -> T {
        let attempts = isMirror(host) ? 1 : options.attempts
        var delay = options.initialBackoffSeconds
        var attempt = 1
        while true {
            do {
                return try body()
            } catch {
                guard error.isTransient, attempt < attempts else { throw error }
                // A server's Retry-After is honoured up to 5 minutes; our own backoff caps at 30 s.
                let wait = error.retryAfter.map { min($0, Self.longestRetryAfter) } ?? min(delay, 30)
                Self.sleep(seconds: wait)
                delay *= 2
                attempt += 1
            }
        }
    }

    static let longestRetryAfter = 300.0

    static func sleep(seconds: Double) {
        guard seconds > 0 else { return }
        var ts = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
        var remaining = timespec()
        while nanosleep(&ts, &remaining) != 0 && errno == EINTR { ts = remaining }
    }

    /// The registry's error message (`{"errors":[{"code":…,"message":…}]}`), or the body's first line.
    static func errorDetail(_ body: [UInt8]) -> String {
        struct Errors: Decodable {
            struct Item: Decodable { var code: String?; var message: String? }
            var errors: [Item]?
        }
        if let e = try? JSONDecoder().decode(Errors.self, from: Data(body)), let items = e.errors, !items.isEmpty {
            return items.map { [$0.code, $0.message].compactMap { $0 }.joined(separator: ": ") }.joined(separator: "; ")
        }
        let text = String(decoding: body.prefix(200), as: UTF8.self)
        return String(text.split(separator: "\n").first ?? "")
    }

    /// `Retry-After` in seconds: either a number of seconds or an HTTP date (RFC 9110 §10.2.3),
    /// the latter counted from the response's own `Date` when it has one (a machine that just
    /// booted may not know the time yet).
    static func retryAfter(_ response: HTTPResponse) -> Double? {
        guard let value = response.header("retry-after")?.trimming(" "), !value.isEmpty else { return nil }
        if let seconds = Double(value) { return max(0, seconds) }
        let date = curl_getdate(value, nil)
        guard date >= 0 else { return nil }
        let served = response.header("date").map { curl_getdate($0, nil) } ?? -1
        return Double(max(0, date - (served >= 0 ? served : time(nil))))
    }
}
