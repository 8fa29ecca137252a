import Foundation
import Testing

/// wyrcan-serve as deployed: the built binary, real HTTP clients (curl) and TLS clients (openssl).
@Suite(.serialized) struct ServeSystemTests {
    static let inventory = """
        releases:
          stable: {kernel: wyrcan/1/wyrcan.kernel, initrd: wyrcan/1/wyrcan.initrd}
        defaults: {release: stable, image: 10.0.2.2:5000/test/hello, kernel_args: [console=ttyS0], args: [console=ttyS0]}
        hosts:
          "52:54:00:12:34:56": {args: ['motd="hello world"', loglevel=3]}
          525400123458: {mode: exit}
        unknown: deny

        """

    final class Server {
        let dir: String
        let port: UInt16
        let process: Background
        var base: String { "http://127.0.0.1:\(port)" }

        init(name: String, inventory: String = ServeSystemTests.inventory, extra: [String] = []) throws {
            dir = try Sys.tempDir("serve-\(name)")
            try FileManager.default.createDirectory(atPath: dir + "/assets/wyrcan/1", withIntermediateDirectories: true)
            let kernel = Data((0..<1_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
            try kernel.write(to: URL(fileURLWithPath: dir + "/assets/wyrcan/1/wyrcan.kernel"))
            try Data("initrd".utf8).write(to: URL(fileURLWithPath: dir + "/assets/wyrcan/1/wyrcan.initrd"))
            try "secret".write(toFile: dir + "/outside", atomically: true, encoding: .utf8)
            try inventory.write(toFile: dir + "/fleet.yaml", atomically: true, encoding: .utf8)
            port = Sys.freePort()
            process = try Background(Sys.binary("wyrcan-serve"), ["--config", dir + "/fleet.yaml", "--assets", dir + "/assets", "--http", "127.0.0.1:\(port)", "--watch-interval", "1"] + extra, log: dir + "/serve.log")
            let base = "http://127.0.0.1:\(port)"
            try Sys.waitFor("wyrcan-serve") { (try? Sys.sh("curl -sf \(base)/healthz").stdout) == "ok\n" }
        }
    }

    func curl(_ args: String) throws -> Sys.Output { try Sys.sh("curl -s \(args)") }

    @Test func scriptsAndCmdlines() throws {
        let s = try Server(name: "scripts")
        let boot = try curl("\(s.base)/boot.ipxe").stdout
        #expect(boot.hasPrefix("#!ipxe\n"))
        #expect(boot.contains("chain --autofree \(s.base)/ipxe?mac=${net0/mac}&arch=${buildarch} || goto failed"))

        let script = try curl("'\(s.base)/ipxe?mac=52-54-00-12-34-56'").stdout
        #expect(script.contains("kernel \(s.base)/assets/wyrcan/1/wyrcan.kernel initrd=wyrcan.initrd console=ttyS0 "))
        #expect(script.contains("wyr.report=\(s.base)/v1/report/52:54:00:12:34:56"))
        #expect(script.contains("initrd --name wyrcan.initrd \(s.base)/assets/wyrcan/1/wyrcan.initrd || goto failed"))
        #expect(try curl("\(s.base)/ipxe/525400123456").stdout == script)

        let cmdline = try curl("'\(s.base)/cmdline?mac=52:54:00:12:34:56'").stdout.trimmingCharacters(in: .newlines)
        let plan = try Sys.wyrcan(["plan", "--json", "--cmdline", cmdline])
        let json = try JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [String: Any]
        #expect(json?["cmdline"] as? String == "console=ttyS0 motd=\"hello world\" loglevel=3")

        let pixie = try JSONSerialization.jsonObject(with: Data(try curl("\(s.base)/v1/boot/52:54:00:12:34:56").stdout.utf8)) as? [String: Any]
        #expect(pixie?["kernel"] as? String == "\(s.base)/assets/wyrcan/1/wyrcan.kernel")
        #expect(pixie?["initrd"] as? [String] == ["\(s.base)/assets/wyrcan/1/wyrcan.initrd"])
        #expect(pixie?["cmdline"] as? String == cmdline)

        #expect(try curl("\(s.base)/ipxe/525400123458").stdout.contains("\nexit\n"))
        #expect(try curl("-o /dev/null -w '%{http_code}' '\(s.base)/ipxe?mac=02:00:00:00:00:01'").stdout == "404", "unknown: deny")
        #expect(try curl("-o /dev/null -w '%{http_code}' '\(s.base)/ipxe?mac=$%7Bnet0/mac%7D'").stdout == "400")
        // A hostile Host header never reaches a script.
        #expect(try curl("-o /dev/null -w '%{http_code}' -H 'Host: evil${x}' \(s.base)/boot.ipxe").stdout == "400")
    }

    @Test func assets() throws {
        let s = try Server(name: "assets")
        let url = "\(s.base)/assets/wyrcan/1/wyrcan.kernel"
        let head = try curl("-I \(url)").stdout.lowercased()
        #expect(head.contains("200 ok"))
        #expect(head.contains("content-length: 1000000"))
        #expect(head.contains("etag: \""))
        #expect(head.contains("last-modified: "))
        let etag = try #require(head.split(separator: "\r\n").first { $0.hasPrefix("etag:") }?.dropFirst(6))
        #expect(try curl("-o /dev/null -w '%{http_code}' -H 'If-None-Match: \(etag)' \(url)").stdout == "304")
        let ranged = try curl("-D - -o \(s.dir)/part -H 'Range: bytes=10-19' \(url)").stdout
        #expect(ranged.contains("206"))
        #expect(ranged.contains("Content-Range: bytes 10-19/1000000"))
        let part = try Data(contentsOf: URL(fileURLWithPath: s.dir + "/part"))
        #expect(Array(part) == (10..<20).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        #expect(try curl("-o /dev/null -w '%{http_code}' -H 'Range: bytes=5000000-' \(url)").stdout == "416")
        let whole = try curl("-o \(s.dir)/whole -w '%{size_download}' \(url)").stdout
        #expect(whole == "1000000")
        for path in ["/assets/../outside", "/assets/%2e%2e/outside", "/assets/wyrcan/../../outside", "/assets/", "/assets/nope"] {
            let code = try curl("--path-as-is -o /dev/null -w '%{http_code}' '\(s.base)\(path)'").stdout
            #expect(code == "404", "\(path) → \(code)")
        }
        let metrics = try curl("\(s.base)/metrics").stdout
        #expect(metrics.contains("wyrcan_http_requests_total{endpoint=\"assets\",status=\"206\"} 1"))
        #expect(metrics.contains("wyrcan_http_response_bytes_total "))
    }

    @Test func reportsAndFleetView() throws {
        let s = try Server(name: "reports")
        let post = try curl("-o /dev/null -w '%{http_code}' -X POST -d '{\"stage\": \"pulling\", \"image\": \"10.0.2.2:5000/test/hello\"}' \(s.base)/v1/report/52:54:00:12:34:56").stdout
        #expect(post == "204")
        #expect(try curl("-o /dev/null -w '%{http_code}' -X POST -d '{\"stage\": \"hacking\"}' \(s.base)/v1/report/52:54:00:12:34:56").stdout == "400")
        #expect(try curl("-o /dev/null -w '%{http_code}' -X POST -d 'x' \(s.base)/v1/report/not-a-mac").stdout == "400")
        _ = try curl("-X POST -d '{\"stage\": \"kexec\", \"detail\": \"booting\"}' \(s.base)/v1/report/52:54:00:12:34:56")
        let hosts = try JSONSerialization.jsonObject(with: Data(try curl("\(s.base)/v1/hosts").stdout.utf8)) as? [String: Any]
        let list = try #require(hosts?["hosts"] as? [[String: Any]])
        let host = try #require(list.first { $0["mac"] as? String == "52:54:00:12:34:56" })
        let last = try #require(host["lastReport"] as? [String: Any])
        #expect(last["stage"] as? String == "kexec")
        #expect(last["count"] as? Int == 2)
        #expect(list.contains { $0["mac"] as? String == "52:54:00:12:34:58" && $0["mode"] as? String == "exit" })
    }

    @Test func reloadKeepsServingOnABadFile() throws {
        let s = try Server(name: "reload")
        let url = "'\(s.base)/cmdline?mac=52:54:00:12:34:56'"
        let before = try curl(url).stdout
        // A broken file: the old inventory keeps serving and the log says why.
        try Self.inventory.replacingOccurrences(of: "unknown: deny", with: "  \"52:54:00:12:34:59\": {image: \"Bad/Image\"}\nunknown: deny").write(toFile: s.dir + "/fleet.yaml", atomically: true, encoding: .utf8)
        try Sys.waitFor("reload error in the log", seconds: 10) { s.process.output.contains("still serving the previous one") }
        #expect(s.process.output.contains("fleet.yaml:7: hosts.52:54:00:12:34:59.image"))
        #expect(try curl(url).stdout == before)
        // A good file is picked up.
        try Self.inventory.replacingOccurrences(of: "loglevel=3", with: "loglevel=7").write(toFile: s.dir + "/fleet.yaml", atomically: true, encoding: .utf8)
        try Sys.waitFor("reload", seconds: 10) { (try? curl(url).stdout.contains("loglevel=7")) == true }
        // SIGHUP reloads too.
        try Self.inventory.replacingOccurrences(of: "loglevel=3", with: "loglevel=5").write(toFile: s.dir + "/fleet.yaml", atomically: true, encoding: .utf8)
        kill(s.process.process.processIdentifier, SIGHUP)
        try Sys.waitFor("SIGHUP reload", seconds: 10) { (try? curl(url).stdout.contains("loglevel=5")) == true }
    }

    @Test func badInventoryRefusesToStart() throws {
        let dir = try Sys.tempDir("serve-bad")
        try "hosts:\n  nonsense: {}\n".write(toFile: dir + "/fleet.yaml", atomically: true, encoding: .utf8)
        let check = try Sys.run(Sys.binary("wyrcan-serve"), ["check", dir + "/fleet.yaml"])
        #expect(check.status == 1)
        #expect(check.stderr.contains("fleet.yaml:2: hosts.nonsense: not a MAC address"))
        let serve = try Sys.run(Sys.binary("wyrcan-serve"), ["--config", dir + "/fleet.yaml", "--assets", dir, "--http", "127.0.0.1:0"])
        #expect(serve.status == 1)
        #expect(serve.stderr.contains("not a MAC address"))
    }

    /// TLS listeners checked with openssl s_client: what each profile accepts and refuses.
    @Test func tlsProfiles() throws {
        let pki = try TestPKI(name: "pki-serve")
        let httpsModern = Sys.freePort(), httpsCompat = Sys.freePort(), httpsUEFI = Sys.freePort()
        let modern = try Server(name: "tls-modern", extra: ["--https", "127.0.0.1:\(httpsModern)", "--tls-profile", "modern", "--cert", pki.serverCert, "--key", pki.serverKey])
        let compat = try Server(name: "tls-compat", extra: ["--https", "127.0.0.1:\(httpsCompat)", "--tls-profile", "ipxe-compat", "--cert", pki.serverCert, "--key", pki.serverKey])
        let uefi = try Server(name: "tls-uefi", extra: ["--https", "127.0.0.1:\(httpsUEFI)", "--tls-profile", "uefi", "--cert", pki.serverCert, "--key", pki.serverKey])
        _ = (modern, compat, uefi)
        func handshake(_ port: UInt16, _ options: String) throws -> Bool {
            let r = try Sys.sh("echo | timeout 10 openssl s_client -connect 127.0.0.1:\(port) -CAfile \(pki.caCert) \(options) 2>&1")
            return r.stdout.contains("Verify return code: 0 (ok)") && !r.stdout.contains("Cipher is (NONE)")
        }
        #expect(try handshake(httpsModern, "-tls1_3"))
        #expect(try handshake(httpsModern, "-tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256"))
        #expect(try !handshake(httpsModern, "-tls1_1 -cipher DEFAULT@SECLEVEL=0"))
        #expect(try !handshake(httpsModern, "-tls1_2 -cipher AES128-SHA256"))
        #expect(try !handshake(httpsModern, "-tls1_2 -cipher ECDHE-RSA-AES128-SHA"))
        #expect(try handshake(httpsCompat, "-tls1_2 -cipher AES128-SHA256"))
        #expect(try handshake(httpsCompat, "-tls1_2 -cipher AES256-SHA256"))
        #expect(try handshake(httpsCompat, "-tls1_3"))
        #expect(try !handshake(httpsCompat, "-tls1_1 -cipher DEFAULT@SECLEVEL=0"))
        // uefi: what edk2 offers (DHE-RSA, AES-GCM; no ECDHE, no groups of its own) and modern's
        // suites — not CBC, not the RSA key exchange, not TLS 1.1.
        #expect(try handshake(httpsUEFI, "-tls1_2 -cipher DHE-RSA-AES256-GCM-SHA384"))
        #expect(try handshake(httpsUEFI, "-tls1_2 -cipher DHE-RSA-AES128-GCM-SHA256 -groups P-256"))
        #expect(try handshake(httpsUEFI, "-tls1_3"))
        #expect(try handshake(httpsUEFI, "-tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256"))
        #expect(try !handshake(httpsUEFI, "-tls1_2 -cipher DHE-RSA-AES256-SHA256"))
        #expect(try !handshake(httpsUEFI, "-tls1_2 -cipher AES256-GCM-SHA384"))
        #expect(try !handshake(httpsUEFI, "-tls1_2 -cipher AES128-SHA256"))
        #expect(try !handshake(httpsUEFI, "-tls1_1 -cipher DEFAULT@SECLEVEL=0"))
        #expect(try !handshake(httpsModern, "-tls1_2 -cipher DHE-RSA-AES256-GCM-SHA384"))
        // Real requests over both.
        let body = try Sys.sh("curl -s --cacert \(pki.caCert) https://127.0.0.1:\(httpsModern)/healthz").stdout
        #expect(body == "ok\n")
        let size = try Sys.sh("curl -s --tlsv1.2 --tls-max 1.2 --ciphers AES128-SHA256 --cacert \(pki.caCert) -o /dev/null -w '%{size_download}' https://127.0.0.1:\(httpsCompat)/assets/wyrcan/1/wyrcan.kernel").stdout
        #expect(size == "1000000")
    }

    /// examples/dhcp/dnsmasq.conf is a configuration dnsmasq takes.
    @Test func theDnsmasqSnippetIsValid() throws {
        let r = try Sys.run("/usr/sbin/dnsmasq", ["--test", "-C", Sys.root + "/examples/dhcp/dnsmasq.conf"])
        #expect(r.status == 0 && r.stderr.contains("syntax check OK"), "\(r.stderr)")
    }

    /// A machine holding connections open (headers sent slowly, never finished) keeps only its
    /// own share: past --per-address-connections the server closes its new connections, and
    /// other machines are served as before.
    @Test func oneAddressCannotTakeAllConnections() throws {
        let server = try Server(name: "per-address", extra: ["--per-address-connections", "8"])
        let script = """
            import socket, sys, time
            port = int(sys.argv[1])
            held = []
            for _ in range(8):
                s = socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.2", 0))
                s.sendall(b"GET /healthz HTTP/1.1\\r\\nHost: x\\r\\n")
                held.append(s)
            time.sleep(0.5)
            extra = socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.2", 0))
            extra.settimeout(5)
            try:
                extra.sendall(b"GET /healthz HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
                print("ninth:", "closed" if extra.recv(100) == b"" else "answered")
            except OSError as e:
                print("ninth: closed", type(e).__name__)
            other = socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.3", 0))
            other.sendall(b"GET /healthz HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
            print("other address:", other.recv(100).split(b"\\r\\n")[0].decode())
            """
        try script.write(toFile: server.dir + "/hold.py", atomically: true, encoding: .utf8)
        let r = try Sys.run("/usr/bin/python3", [server.dir + "/hold.py", "\(server.port)"])
        #expect(r.stdout.contains("ninth: closed"), "\(r.stdout) \(r.stderr)")
        #expect(r.stdout.contains("other address: HTTP/1.1 200 OK"), "\(r.stdout) \(r.stderr)")
    }
}
