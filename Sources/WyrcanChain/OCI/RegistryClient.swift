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
    private let tokens = Locked<[String: String]>([:])
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
    let http: HTTPClient

    public init(reference: Reference, options: RegistryOptions, tokens: TokenCache = TokenCache()) throws(RegistryError) {
        self.reference = reference
        self.options = options
        self.tokens = tokens
        do { http = try HTTPClient() } catch { throw .transport(error) }
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

    /// How requests reach `host`: redirects followed (blobs live on CDNs), stalls caught instead of
    /// a time limit (a blob may take long), the host's CA.
    func httpOptions(host: String, streaming: Bool, maximumBody: Int) -> HTTPOptions {
        var o = HTTPOptions()
        o.connectTimeoutSeconds = 20
        o.timeoutSeconds = nil
        o.stallSeconds = 60
        o.followRedirects = true
        o.caFile = caFile(host: host)
        o.maximumBufferedBytes = maximumBody
        // Blobs: 256 KiB per read from the socket instead of 16 KiB (a 300 MB image: ≈ 1 100
        // reads instead of ≈ 19 000).
        if streaming { o.receiveBufferBytes = 256 << 10 }
        return o
    }

    /// One request with authentication: on a 401 challenge, obtains a token (or uses Basic
    /// credentials) and repeats the request once. Successful (2xx) bodies go to `receive` when
    /// given; error bodies are always buffered for the message.
    func exchange(
        host: String, url: String, headers: [String], receive: ((UnsafeRawBufferPointer) -> Bool)? = nil,
        onHead: ((HTTPResponse) -> Void)? = nil, maximumBody: Int = HTTPOptions().maximumBufferedBytes
    ) throws(RegistryError) -> HTTPResponse {
        var authorization = authorizationHeader(host: host)
        let options = httpOptions(host: host, streaming: receive != nil, maximumBody: maximumBody)
        for round in 0..<2 {
            let request = HTTPRequest(url: url, headers: headers + (authorization.map { [$0] } ?? []), options: options)
            let result: HTTPResponse
            do { result = try http.send(request, onHead: onHead, receive: receive) } catch { throw .transport(error) }
            if result.stoppedByReceiver { return result }
            // A 401 after a redirect to another host (a CDN) is that host's: our credentials
            // are not for it (libcurl drops our Authorization header there, for the same reason).
            let answeredBy = HTTPURL.authority(of: http.effectiveURL)
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

    /// Runs `body` against `host` with the options' retry policy for the registry, and once for
    /// a mirror (the next host is the fallback, so a dead mirror costs no backoff).
    func withRetries<T>(host: String, _ body: () throws(RegistryError) -> T) throws(RegistryError) -> T {
        try (isMirror(host) ? RetryPolicy.once : options.retry).run { (_) throws(RegistryError) in try body() }
    }

    /// `body` from each of `hosts` in turn (mirrors first), each with its retries, until one
    /// answers: a mirror that refuses us is skipped; the registry's refusal and a local file
    /// error are final.
    func firstHost<T>(_ hosts: [String], notFound what: String, _ body: (String) throws(RegistryError) -> T) throws(RegistryError) -> T {
        var lastError: RegistryError = .notFound(what: what)
        for host in hosts {
            do throws(RegistryError) {
                return try withRetries(host: host) { () throws(RegistryError) in try body(host) }
            } catch {
                lastError = error
                if case .unauthorized = error, !isMirror(host) { throw error }
                if case .file = error { throw error }
            }
        }
        throw lastError
    }

    /// The registry's error message (`{"errors":[{"code":…,"message":…}]}`), or the body's first line.
    static func errorDetail(_ response: HTTPResponse) -> String {
        struct Errors: Decodable {
            struct Item: Decodable { var code: String?; var message: String? }
            var errors: [Item]?
        }
        if let e = try? JSONDecoder().decode(Errors.self, from: Data(response.body)), let items = e.errors, !items.isEmpty {
            let text = items.map { [$0.code, $0.message].compactMap { $0 }.joined(separator: ": ") }.joined(separator: "; ")
            return Message.quoted(text, limit: 200, quotes: false)
        }
        return response.bodySummary
    }
}
