import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import WyrcanChain

@Suite struct ReferenceTests {
    @Test(arguments: [
        ("debian", "docker.io/library/debian:latest"),
        ("debian:12", "docker.io/library/debian:12"),
        ("user/app", "docker.io/user/app:latest"),
        ("docker.io/debian", "docker.io/library/debian:latest"),
        ("index.docker.io/library/debian:bookworm", "docker.io/library/debian:bookworm"),
        ("registry.gitlab.com/wyrcan/debian:latest", "registry.gitlab.com/wyrcan/debian:latest"),
        ("localhost/x", "localhost/x:latest"),
        ("localhost:5000/x/y:1.0", "localhost:5000/x/y:1.0"),
        ("10.0.2.2:5000/test/hello", "10.0.2.2:5000/test/hello:latest"),
        ("[::1]:5000/test/hello:v1", "[::1]:5000/test/hello:v1"),
        ("[fe80::1]/a", "[fe80::1]/a:latest"),
        ("Registry.Local/a", "Registry.Local/a:latest"),
        ("r.io/a.b_c__d---e/f", "r.io/a.b_c__d---e/f:latest"),
        ("r.io/x@sha256:" + String(repeating: "a", count: 64), "r.io/x@sha256:" + String(repeating: "a", count: 64)),
        ("r.io/x:t@sha256:" + String(repeating: "b", count: 64), "r.io/x:t@sha256:" + String(repeating: "b", count: 64)),
    ])
    func normalises(input: String, canonical: String) throws {
        #expect(try Reference(parsing: input).description == canonical)
    }

    @Test func parts() throws {
        let r = try Reference(parsing: "debian")
        #expect(r.registry == "docker.io")
        #expect(r.apiHost == "registry-1.docker.io")
        #expect(r.repository == "library/debian")
        #expect(r.manifestReference == "latest")
        let d = try Reference(parsing: "r.io:443/a/b:t@sha256:" + String(repeating: "c", count: 64))
        #expect(d.registry == "r.io:443")
        #expect(d.apiHost == "r.io:443")
        #expect(d.tag == "t")
        #expect(d.manifestReference == "sha256:" + String(repeating: "c", count: 64))
    }

    @Test(arguments: [
        ("", "empty"),
        ("Debian", "lowercase"),
        ("r.io/UP", "lowercase"),
        ("r.io/a//b", "path component"),
        ("r.io/-a", "path component"),
        ("r.io/a_", "path component"),
        ("r.io/a...b", "path component"),
        ("r.io/a:", "tag after ':' is empty"),
        ("r.io/a:-x", "tag \"-x\""),
        ("r.io/a:" + String(repeating: "t", count: 129), "tag"),
        ("r.io/a@sha256:abc", "64 lowercase hex"),
        ("r.io/a@md5:" + String(repeating: "a", count: 32), "unsupported digest algorithm"),
        ("r.io/a@sha256:" + String(repeating: "A", count: 64), "lowercase hex"),
        ("r.io:99999/a", "port"),
        ("r.io:/a", "port"),
        ("bad_host.io/a", "host"),
        ("[::1/a", "lacks ']'"),
        ("[zz]/a", "IPv6"),
        ("r.io/a b", "printable ASCII"),
        ("r.io/" + String(repeating: "a", count: 251), "at most 255"),
    ])
    func rejects(input: String, reason: String) {
        do {
            let r = try Reference(parsing: input)
            Issue.record("accepted \(input) as \(r)")
        } catch {
            #expect(error.description.contains(reason), "\(error.description)")
            // The input is named, quoted, shortened when long, on one line.
            #expect(error.description.contains(Message.quoted(input)) || input.isEmpty || error.description.hasPrefix("invalid digest"))
            #expect(!error.description.contains("\n") && error.description.count < 600)
        }
    }

    @Test func platform() throws {
        #expect(try Platform(parsing: "linux/amd64").description == "linux/amd64")
        #expect(try Platform(parsing: "linux/aarch64").description == "linux/arm64")
        #expect(try Platform(parsing: "linux/arm/v7").variant == "v7")
        #expect(try Platform(parsing: "linux/arm64/v8.2").variant == "v8.2")
        #expect(throws: ReferenceError.self) { try Platform(parsing: "linux/arm.64") }
        #expect(throws: ReferenceError.self) { try Platform(parsing: "linux") }
        #expect(throws: ReferenceError.self) { try Platform(parsing: "linux//") }
        #expect(Platform.current.os == "linux")
    }

    /// Pieces of the registry client's HTTP handling that a real registry rarely exercises.
    @Test func registryResponsesAreReadCarefully() {
        #expect(RegistryClient.rangeStart("bytes 100-199/200") == 100)
        #expect(RegistryClient.rangeStart(" bytes 0-9/10") == 0)
        #expect(RegistryClient.rangeStart("bytes */200") == nil)
        #expect(RegistryClient.rangeStart("none") == nil)
        let twoChallenges = HTTPResponse(status: 401, headers: [("www-authenticate", #"Basic realm="r""#),
                                                               ("www-authenticate", #"Bearer realm="https://auth.example/token""#)], body: [])
        #expect(RegistryClient.preferredChallenge(twoChallenges)?.hasPrefix("Bearer") == true)
        #expect(RegistryClient.preferredChallenge(HTTPResponse(status: 401, headers: [], body: [])) == nil)
        // HTTP/2 stream resets (CURLE_HTTP2_STREAM, CURLE_HTTP2) are retried like a dropped connection.
        #expect(CurlError(code: 92, message: "stream 1 was not closed cleanly", url: "").isTransient)
        #expect(CurlError(code: 16, message: "HTTP/2 framing", url: "").isTransient)
        #expect(!CurlError(code: 60, message: "certificate", url: "").isTransient)
        // A busy token service is retried, after its Retry-After.
        let busy = RegistryError.http(status: 503, url: "https://auth.example/token", detail: "", retryAfter: 2)
        #expect(busy.isTransient && busy.retryAfter == 2)
        #expect(RegistryError.sizeMismatch(what: "blob b", expected: 10, actual: 11).description == "blob b: got more than the 10 bytes its descriptor gives; refusing it")
    }

    /// An index entry is chosen only if the platform can run it: its own variant first, then the
    /// nearest lower level, then one without a variant; never a higher level.
    @Test func variantsAreMatchedByLevel() throws {
        func index(_ platforms: [String]) throws -> Index {
            let digest = try Digest(parsing: "sha256:" + String(repeating: "a", count: 64))
            return Index(schemaVersion: 2, mediaType: nil, manifests: try platforms.map {
                Descriptor(mediaType: MediaType.ociManifest, digest: digest, size: 1, platform: try Platform(parsing: $0))
            })
        }
        func chosen(_ platforms: [String], for wanted: String) throws -> String? {
            try index(platforms).manifest(for: try Platform(parsing: wanted))?.platform?.description
        }
        #expect(try chosen(["linux/arm/v7"], for: "linux/arm/v6") == nil, "v7 does not run on v6")
        #expect(try chosen(["linux/arm/v5", "linux/arm/v6"], for: "linux/arm/v7") == "linux/arm/v6")
        #expect(try chosen(["linux/arm", "linux/arm/v6", "linux/arm/v7"], for: "linux/arm/v7") == "linux/arm/v7")
        #expect(try chosen(["linux/arm"], for: "linux/arm/v6") == "linux/arm")
        #expect(try chosen(["linux/amd64/v3"], for: "linux/amd64") == nil, "v3 needs more than the baseline")
        #expect(try chosen(["linux/amd64/v3", "linux/amd64"], for: "linux/amd64") == "linux/amd64")
        #expect(try chosen(["linux/amd64", "linux/amd64/v2", "linux/amd64/v3"], for: "linux/amd64/v3") == "linux/amd64/v3")
        #expect(try chosen(["linux/amd64/v2", "linux/amd64/v3"], for: "linux/amd64/v4") == "linux/amd64/v3")
        #expect(try chosen(["linux/arm64", "linux/arm64/v8"], for: "linux/arm64") == "linux/arm64/v8")
        #expect(try chosen(["unknown/unknown", "linux/arm64/v8"], for: "linux/amd64") == nil)
        #expect(try chosen(["linux/riscv64/rva22"], for: "linux/riscv64") == "linux/riscv64/rva22")
    }

    /// Auth-file keys as Docker and containers write them all name a registry host.
    @Test func authFileKeysAreRegistryHosts() throws {
        let path = "/tmp/wyrcan-authfile-\(getpid()).json"
        defer { FileSystem.remove(path) }
        let basic = "dXNlcjpwYXNz"  // user:pass
        let json = """
            {"auths": {"https://index.docker.io/v1/": {"auth": "\(basic)"}, "https://r.example.com/v2/": {"username": "u", "password": "p"},
                       "127.0.0.1:5000": {"auth": "\(basic)"}, "helper.example.com": {"identitytoken": "t"},
                       "acr.example.com": {"auth": "MDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAwOg==", "identitytoken": "t"}}}
            """
        try FileSystem.writeFile(path, Array(json.utf8))
        var options = RegistryOptions()
        try options.loadAuthFile(path)
        #expect(options.credentials["docker.io"] == Credentials(username: "user", password: "pass"))
        #expect(options.credentials["r.example.com"] == Credentials(username: "u", password: "p"))
        #expect(options.credentials["127.0.0.1:5000"] == Credentials(username: "user", password: "pass"))
        #expect(options.credentials["helper.example.com"] == nil, "identity tokens are not used")
        #expect(options.credentials["acr.example.com"] == nil, "nor the placeholder login written beside one")

        try FileSystem.writeFile(path, Array(#"{"auths": {"r.io": {"auth": "not base64!"}}}"#.utf8))
        #expect(throws: RegistryError.self) { try options.loadAuthFile(path) }
    }
}
