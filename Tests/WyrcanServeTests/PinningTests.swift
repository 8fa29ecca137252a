import Foundation
import Testing
import WyrcanChain
import WyrcanHTTP
@testable import WyrcanFleet
@testable import WyrcanServe

/// The inventory's `verify:` and `pin:`: key files are read (and refused) at load, a host's
/// images are handed out by digest only, and never before they resolved. (Resolving against a
/// registry with real signatures: SignatureSystemTests.)
@Suite struct PinningTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().path + "/Fixtures/signatures"
    static let file = fixtures + "/fleet.yaml"

    static func inventory(_ extra: String) -> String {
        """
        releases:
          stable: {kernel: k, initrd: i}
        defaults: {release: stable, image: r.io/os:prod, verify: [p256.pub]}
        groups:
          lab: {image: [r.io/wyrcan:2, "r.io/os:lab"], verify: [rsa.pub, ed25519.pub], platform: linux/arm64, insecure: ["r.io"]}
          plain: {image: r.io/os:plain, pin: true}
        \(extra)
        """
    }

    func load(_ text: String) throws(InventoryErrors) -> Inventory { try InventoryLoader.load(text: text, file: Self.file) }

    func errors(_ text: String) -> [String] {
        do { _ = try load(text); return [] } catch { return error.errors.map(\.description) }
    }

    @Test func keysAreReadRelativeToTheInventoryAndListsReplace() throws {
        let inventory = try load(Self.inventory("hosts: {\"52:54:00:00:00:01\": {group: lab}, \"52:54:00:00:00:02\": {}}"))
        #expect(Set(inventory.verifyKeys.keys) == Set(["p256", "rsa", "ed25519"].map { "\(Self.fixtures)/\($0).pub" }))
        #expect(inventory.verifyKeys["\(Self.fixtures)/rsa.pub"]?.name == "rsa")
        let (lab, _) = try #require(inventory.profile(for: MACAddress("52:54:00:00:00:01")!))
        #expect(lab.verify == ["\(Self.fixtures)/rsa.pub", "\(Self.fixtures)/ed25519.pub"])
        let requests = ImagePinner.requests(for: lab, inventory: inventory)
        #expect(requests.map(\.image) == ["r.io/wyrcan:2", "r.io/os:lab"])
        #expect(requests.allSatisfy { $0.platform == "linux/arm64" && $0.insecure && $0.keys.count == 2 && $0.keys.allSatisfy { $0.count == 64 } })
        let (plain, _) = try #require(inventory.profile(for: MACAddress("52:54:00:00:00:02")!))
        #expect(ImagePinner.requests(for: plain, inventory: inventory).map(\.platform) == [ImagePinner.defaultPlatform])
    }

    @Test func manyHostsShareOneRequestPerImage() throws {
        var hosts = "hosts:\n"
        for i in 0..<1000 { hosts += String(format: "  \"52:54:01:00:%02x:%02x\": {image: \"r.io/os:v%d\"}\n", i / 256, i % 256, i % 10) }
        let inventory = try load(Self.inventory(hosts))
        #expect(ImagePinner.requests(in: inventory).count == 11)  // 10 tags, and the defaults' for unknown MACs
    }

    @Test func unusableKeysAndContradictionsAreRefusedAtLoad() {
        let missing = errors(Self.inventory("hosts: {\"52:54:00:00:00:01\": {verify: nope.pub}}"))
        #expect(missing.count == 1 && missing[0].hasPrefix("\(Self.file):7: hosts.52:54:00:00:00:01.verify: ") && missing[0].hasSuffix("\(Self.fixtures)/nope.pub: No such file or directory"), "\(missing)")
        let weak = errors(Self.inventory("hosts: {\"52:54:00:00:00:01\": {verify: [p521.pub, rsa1024.pub]}}"))
        #expect(weak.count == 2 && weak.allSatisfy { $0.contains("unsupported key type") }, "\(weak)")
        let notKey = errors(Self.inventory("hosts: {\"52:54:00:00:00:01\": {verify: good.json}}"))
        #expect(notKey.count == 1 && notKey[0].hasSuffix("good.json: not a PEM public key"), "\(notKey)")
        let empty = errors(Self.inventory("hosts: {\"52:54:00:00:00:01\": {verify: []}}"))
        #expect(empty.count == 1 && empty[0].contains("give one or more public key files"), "\(empty)")
        let off = errors(Self.inventory("hosts: {\"52:54:00:00:00:01\": {pin: false}}"))
        #expect(off == ["\(Self.file):7: hosts.52:54:00:00:00:01.pin: verify: hands out the verified digest only: pin: false (in defaults, the group or the host) cannot go with it"], "\(off)")
        // In the defaults, for unknown MACs.
        let defaultsOff = errors(Self.inventory("").replacingOccurrences(of: "verify: [p256.pub]}", with: "verify: [p256.pub], pin: false}"))
        #expect(defaultsOff.count == 1 && defaultsOff[0].contains("defaults.pin: verify: hands out"), "\(defaultsOff)")
        // An absolute path is taken as it is.
        #expect(errors(Self.inventory("hosts: {\"52:54:00:00:00:01\": {verify: \"\(Self.fixtures)/rsa.pub\"}}")) == [])
    }

    /// Before its image resolved, a pinned host is turned away (503, Retry-After) with the
    /// reason; a host that pins nothing is served as always.
    @Test func aPinnedHostWaitsForItsDigest() throws {
        let inventory = try load("""
            releases: {stable: {kernel: k, initrd: i}}
            defaults: {release: stable, image: r.io/os:prod}
            hosts: {"52:54:00:00:00:01": {verify: p256.pub}, "52:54:00:00:00:02": {}}
            """)
        let pinner = ImagePinner(options: RegistryOptions(), workDirectory: "/nonexistent", logger: .init(label: "t"))
        let server = BootServer(store: InventoryStore(fixed: inventory, logger: .init(label: "t")), state: FleetState(),
                                assets: AssetHandler(root: "/nonexistent"), pinner: pinner, tokens: try ReportTokens(secret: Array(repeating: 7, count: 32), allowUnauthenticated: true), publicURL: nil, logger: .init(label: "t"))
        func get(_ mac: String) -> HTTPServerResponse {
            server.handle(HTTPServerRequest(method: "GET", path: "/ipxe", query: [("mac", mac)], headers: ["host": "10.0.2.2:8080"], isTLS: false))
        }
        let waiting = get("52:54:00:00:00:01")
        #expect(waiting.status == 503 && waiting.headers.contains { $0.0 == "Retry-After" })
        guard case .bytes(let body) = waiting.body else { Issue.record("no body"); return }
        #expect(String(decoding: body, as: UTF8.self) == "r.io/os:prod is not served: being resolved\n")
        #expect(get("52:54:00:00:00:02").status == 200)
    }

    /// Every answer that carries images (script, cmdline, Pixiecore) waits; a failed check is
    /// the reason given; a host that boots from disk never waits for a registry.
    @Test func everyAnswerWaitsAndSaysWhy() throws {
        let inventory = try load("""
            releases: {stable: {kernel: k, initrd: i}}
            defaults: {release: stable, image: "127.0.0.1:1/os:prod", insecure: ["127.0.0.1:1"], verify: p256.pub}
            hosts: {"52:54:00:00:00:01": {}, "52:54:00:00:00:02": {mode: exit}}
            unknown: deny
            """)
        var options = RegistryOptions()
        options.retry = .once
        let pinner = ImagePinner(options: options, workDirectory: "/nonexistent", logger: .init(label: "t"))
        pinner.refresh(inventory, reason: "test")
        let server = BootServer(store: InventoryStore(fixed: inventory, logger: .init(label: "t")), state: FleetState(),
                                assets: AssetHandler(root: "/nonexistent"), pinner: pinner, tokens: try ReportTokens(secret: Array(repeating: 7, count: 32), allowUnauthenticated: true), publicURL: nil, logger: .init(label: "t"))
        func get(_ path: String) -> (Int, String) {
            let r = server.handle(HTTPServerRequest(method: "GET", path: path, query: [("mac", "52:54:00:00:00:01")], headers: ["host": "10.0.2.2:8080"], isTLS: false))
            guard case .bytes(let body) = r.body else { return (r.status, "") }
            return (r.status, String(decoding: body, as: UTF8.self))
        }
        for path in ["/ipxe", "/cmdline", "/v1/boot/52:54:00:00:00:01"] {
            let (status, body) = get(path)
            #expect(status == 503 && body.hasPrefix("127.0.0.1:1/os:prod is not served: ") && body.contains("127.0.0.1:1"), "\(path): \(body)")
        }
        #expect(pinner.status(for: inventory.defaults, inventory: inventory).first?.1?.state == .unresolved)
        #expect(pinner.metrics().contains("wyrcan_image_pins{state=\"unresolved\"} 1\n"))
        let exit = server.handle(HTTPServerRequest(method: "GET", path: "/ipxe", query: [("mac", "52:54:00:00:00:02")], headers: ["host": "10.0.2.2:8080"], isTLS: false))
        #expect(exit.status == 200)
    }

    @Test func aPinnedReferenceNamesTheRepositoryAndDigest() throws {
        let digest = try Digest(parsing: "sha256:" + String(repeating: "ab", count: 32))
        #expect(PinRequest.pinnedReference("r.io:5000/os/debian:prod", digest) == "r.io:5000/os/debian@\(digest)")
        #expect(PinRequest.pinnedReference("Not/Valid", digest) == nil)
        #expect(PinRequest.pinnedReference("debian", digest) == "docker.io/library/debian@\(digest)")
    }
}
