#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension RegistryClient {
    /// Tokens are per host: a mirror's token (or the registry's) is never sent to the other.
    func tokenKey(host: String) -> String { "\(host)|\(reference.repository)" }

    func authorizationHeader(host: String) -> String? {
        if let token = tokens.get(tokenKey(host: host)) { return "Authorization: Bearer \(token)" }
        return nil
    }

    /// The credentials for `host`: the registry's for the registry, a mirror's own for a mirror
    /// (a mirror is another party: it never sees the registry's password).
    func credentials(host: String) -> Credentials? {
        isMirror(host) ? options.credentials[RegistryOptions.registryKey(host)] : options.credentials[reference.registry]
    }

    /// Answers a `WWW-Authenticate` challenge: Bearer (fetch a token from the realm, with Basic
    /// credentials when we have them, anonymously otherwise) or Basic (send the credentials).
    /// Returns the header for the next attempt; nil when the challenge cannot be answered.
    func authorize(host: String, challenge: String?) throws(RegistryError) -> String? {
        let registry = registryName(host)
        let credentials = credentials(host: host)
        guard let challenge else {
            throw .unauthorized(registry: registry, detail: "HTTP 401 without a WWW-Authenticate challenge")
        }
        let (scheme, params) = Self.parseChallenge(challenge)
        switch scheme.lowercased() {
        case "basic":
            guard let credentials else {
                throw .unauthorized(registry: registry, detail: "the registry needs a user name and password; none configured")
            }
            return credentials.basicHeader
        case "bearer":
            guard let realm = params["realm"], realm.hasPrefix("https://") || realm.hasPrefix("http://") else {
                throw .unauthorized(registry: registry, detail: "Bearer challenge without a realm URL")
            }
            // Credentials go to a plain-HTTP token service only for a registry reached over plain
            // HTTP by the user's choice.
            if realm.hasPrefix("http://"), credentials != nil, !options.isInsecure(host), !options.isInsecure(HTTPURL.authority(of: realm)) {
                throw .unauthorized(registry: registry, detail: "the token service \(realm) is plain HTTP; refusing to send credentials there")
            }
            var query: [String] = []
            if let service = params["service"] { query.append("service=\(service.percentEncoded())") }
            query.append("scope=\((params["scope"] ?? "repository:\(reference.repository):pull").percentEncoded())")
            let tokenURL = realm + (realm.contains("?") ? "&" : "?") + query.joined(separator: "&")
            var options = HTTPOptions().trusting(caFile: caFile(host: host))
            options.maximumBufferedBytes = Self.maximumTokenBytes
            let response: HTTPResponse
            do {
                response = try http.send(HTTPRequest(url: tokenURL, headers: credentials.map { [$0.basicHeader] } ?? [], options: options))
            } catch { throw .transport(error) }
            // A busy token service is retried like the registry, not taken for a refusal.
            if RetryPolicy.isTransient(status: response.status) {
                throw .http(status: response.status, url: realm, detail: Self.errorDetail(response), retryAfter: response.retryAfter)
            }
            guard response.status == 200 else {
                let who = credentials == nil ? "anonymous" : "user \(credentials!.username)"
                throw .unauthorized(registry: registry, detail: "token service refused \(who) with HTTP \(response.status): \(Self.errorDetail(response))")
            }
            struct Token: Decodable { var token: String?; var access_token: String? }
            guard let t = try? JSONDecoder().decode(Token.self, from: Data(response.body)), let token = t.token ?? t.access_token else {
                throw .unauthorized(registry: registry, detail: "token service answered without a token")
            }
            tokens.set(tokenKey(host: host), token)
            return "Authorization: Bearer \(token)"
        default:
            throw .unauthorized(registry: registry, detail: "unsupported authentication scheme '\(scheme)'")
        }
    }

    /// A token response is a small JSON object; a larger one is refused rather than buffered.
    static let maximumTokenBytes = 1 << 20

    /// `Bearer realm="https://auth",service="registry",scope="repository:x:pull"` → ("Bearer", params).
    static func parseChallenge(_ header: String) -> (String, [String: String]) {
        let trimmed = header.trimming(" ")
        guard let space = trimmed.firstIndex(of: " ") else { return (trimmed, [:]) }
        let scheme = String(trimmed[..<space])
        var params: [String: String] = [:]
        var rest = Substring(trimmed[trimmed.index(after: space)...])
        while !rest.isEmpty {
            rest = rest.drop { $0 == " " || $0 == "," }
            guard let eq = rest.firstIndex(of: "=") else { break }
            let key = rest[..<eq].trimming(" ").lowercased()
            rest = rest[rest.index(after: eq)...]
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                while let c = rest.first, c != "\"" {
                    if c == "\\", let next = rest.dropFirst().first { value.append(next); rest = rest.dropFirst(2); continue }
                    value.append(c)
                    rest = rest.dropFirst()
                }
                rest = rest.dropFirst()
            } else {
                let end = rest.firstIndex(of: ",") ?? rest.endIndex
                value = String(rest[..<end]).trimming(" ")
                rest = rest[end...]
            }
            params[key] = value
        }
        return (scheme, params)
    }
}
