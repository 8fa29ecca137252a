#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A user name and password (or identity token) for one registry.
public struct Credentials: Sendable, Equatable {
    public var username: String
    public var password: String
    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }

    var basicHeader: String {
        "Authorization: Basic " + Data("\(username):\(password)".utf8).base64EncodedString()
    }
}

/// How to reach registries: plain-HTTP opt-ins, CA file, credentials, mirrors, retries.
public struct RegistryOptions: Sendable {
    /// `host[:port]` values reached over plain HTTP (`wyr.insecure=`, `--insecure-registry`).
    public var insecureRegistries: Set<String> = []
    /// A PEM bundle of CAs to trust for HTTPS to every registry (default: the system's).
    public var caFile: String? = nil
    /// PEM bundles of CAs by registry host (`host[:port]`, as in the reference or a mirror);
    /// they win over `caFile` for that host.
    public var caFiles: [String: String] = [:]
    /// Credentials by registry host (`docker.io` for Docker Hub).
    public var credentials: [String: Credentials] = [:]
    /// Mirrors by registry: tried in order before the registry itself.
    public var mirrors: [String: [String]] = [:]
    /// How transient failures (connection errors, 429, 5xx) of a registry request are retried;
    /// a mirror is asked once.
    public var retry = RetryPolicy.registry
    public var platform: Platform = .current
    /// Parallel blob downloads.
    public var parallelDownloads = 4

    public init() {}

    /// What a boot cmdline says about reaching registries (`wyr.insecure=`, `wyr.platform=`).
    public init(bootArgs args: WyrcanArgs) {
        insecureRegistries = Set(args.insecureRegistries)
        if let platform = args.platform { self.platform = platform }
    }

    /// Reads a Docker-style `config.json` / containers `auth.json`:
    /// `{"auths": {"HOST": {"auth": base64("user:pass")}}}` (or `username`/`password` fields).
    public mutating func loadAuthFile(_ path: String) throws(RegistryError) {
        struct AuthFile: Decodable {
            struct Entry: Decodable {
                var auth: String?
                var username: String?
                var password: String?
                var identitytoken: String?
            }
            var auths: [String: Entry]?
        }
        let bytes: [UInt8]
        do { bytes = try FileSystem.readFile(path) } catch { throw .file(error) }
        let file: AuthFile
        do { file = try JSONDecoder().decode(AuthFile.self, from: Data(bytes)) } catch {
            throw .authFile(path: path, reason: "not valid JSON with an \"auths\" object")
        }
        for (key, entry) in file.auths ?? [:] {
            let host = Self.registryKey(key)
            // `docker login` with an identity token writes a placeholder `auth` (a fixed user
            // name, no password) beside it: that is no login, and identity tokens are not used.
            if let token = entry.identitytoken, !token.isEmpty { continue }
            if let auth = entry.auth, !auth.isEmpty {
                guard let data = Data(base64Encoded: auth), let text = String(data: data, encoding: .utf8),
                      let colon = text.firstIndex(of: ":") else {
                    throw .authFile(path: path, reason: "the \"auth\" of \(key) is not base64 of user:password")
                }
                credentials[host] = Credentials(username: String(text[..<colon]), password: String(text[text.index(after: colon)...]))
            } else if let user = entry.username, let pass = entry.password {
                credentials[host] = Credentials(username: user, password: pass)
            }
        }
    }

    /// Normalises an auth-file key (`https://index.docker.io/v1/`, `r.io`, `https://r.io`) to a registry.
    static func registryKey(_ key: String) -> String {
        let host = HTTPURL.authority(of: key)
        switch host {
        case "index.docker.io", "registry-1.docker.io", "docker.io": return Reference.dockerHub
        default: return host
        }
    }

    func isInsecure(_ host: String) -> Bool { insecureRegistries.contains(host) }
}
