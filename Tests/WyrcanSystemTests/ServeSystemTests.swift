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

        /// `state`: the state store (default: a new one in the server's directory).
        init(name: String, inventory: String = ServeSystemTests.inventory, extra: [String] = [], state: String? = nil) throws {
            dir = try Sys.tempDir("serve-\(name)")
            try FileManager.default.createDirectory(atPath: dir + "/assets/wyrcan/1", withIntermediateDirectories: true)
            let kernel = Data((0..<1_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
            try kernel.write(to: URL(fileURLWithPath: dir + "/assets/wyrcan/1/wyrcan.kernel"))
            try Data("initrd".utf8).write(to: URL(fileURLWithPath: dir + "/assets/wyrcan/1/wyrcan.initrd"))
            try "secret".write(toFile: dir + "/outside", atomically: true, encoding: .utf8)
            try inventory.write(toFile: dir + "/fleet.yaml", atomically: true, encoding: .utf8)
            port = Sys.freePort()
            process = try Background(Sys.binary("wyrcan-serve"), ["--config", dir + "/fleet.yaml", "--assets", dir + "/assets", "--state", state ?? dir + "/state.db",
                                                                  "--http", "127.0.0.1:\(port)", "--watch-interval", "1"] + extra, log: dir + "/serve.log")
            let base = "http://127.0.0.1:\(port)"
            try Sys.waitFor("wyrcan-serve") { (try? Sys.sh("curl -sf \(base)/healthz").stdout) == "ok\n" }
        }
    }

    func curl(_ args: String) throws -> Sys.Output { try Sys.sh("curl -s \(args)") }

    /// `text` with every report URL's boot id and token replaced by one placeholder.
    static func anyBoot(_ text: String) -> String {
        text.replacingOccurrences(of: "boot=[0-9a-f]{16}&token=[0-9a-f]{32}", with: "boot=ID&token=T", options: .regularExpression)
    }

    /// The `wyr.report` URL (with a boot id and its token) the server at 127.0.0.1:`port` gives
    /// `mac`, as a guest reaching it at `host` (default 10.0.2.2) would be given it.
    static func reportURL(port: UInt16, mac: String, host: String? = nil) throws -> String {
        let cmdline = try Sys.sh("curl -sf -H 'Host: \(host ?? "10.0.2.2:\(port)")' 'http://127.0.0.1:\(port)/cmdline?mac=\(mac)'").stdout
        guard let token = cmdline.split(whereSeparator: { $0 == " " || $0 == "\n" }).first(where: { $0.hasPrefix("wyr.report=") }) else {
            throw SysError("no wyr.report in the cmdline of \(mac): \(cmdline)")
        }
        return String(token.dropFirst("wyr.report=".count))
    }

    @Test func scriptsAndCmdlines() throws {
        let s = try Server(name: "scripts")
        let boot = try curl("\(s.base)/boot.ipxe").stdout
        #expect(boot.hasPrefix("#!ipxe\n"))
        #expect(boot.contains("chain --autofree \(s.base)/ipxe?mac=${net0/mac}&arch=${buildarch} || goto failed"))

        let script = try curl("'\(s.base)/ipxe?mac=52-54-00-12-34-56'").stdout
        #expect(script.contains("kernel \(s.base)/assets/wyrcan/1/wyrcan.kernel initrd=wyrcan.initrd console=ttyS0 "))
        #expect(script.contains("wyr.report=\(s.base)/v1/report/52:54:00:12:34:56?boot="))
        #expect(script.contains("initrd --name wyrcan.initrd \(s.base)/assets/wyrcan/1/wyrcan.initrd || goto failed"))
        // Every answer starts a boot of its own: the same but for the boot id and token.
        let again = try curl("\(s.base)/ipxe/525400123456").stdout
        #expect(Self.anyBoot(again) == Self.anyBoot(script) && again != script)

        let cmdline = try curl("'\(s.base)/cmdline?mac=52:54:00:12:34:56'").stdout.trimmingCharacters(in: .newlines)
        let plan = try Sys.wyrcan(["plan", "--json", "--cmdline", cmdline])
        let json = try JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [String: Any]
        #expect(json?["cmdline"] as? String == "console=ttyS0 motd=\"hello world\" loglevel=3")

        let pixie = try JSONSerialization.jsonObject(with: Data(try curl("\(s.base)/v1/boot/52:54:00:12:34:56").stdout.utf8)) as? [String: Any]
        #expect(pixie?["kernel"] as? String == "\(s.base)/assets/wyrcan/1/wyrcan.kernel")
        #expect(pixie?["initrd"] as? [String] == ["\(s.base)/assets/wyrcan/1/wyrcan.initrd"])
        #expect((pixie?["cmdline"] as? String).map(Self.anyBoot) == Self.anyBoot(cmdline))

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

    /// Reports carry the boot id and token of the script the host was served: a missing, wrong
    /// or other host's token is refused (403, counted); accepted ones survive a restart.
    @Test func reportsAreAuthenticatedAndSurviveARestart() throws {
        let inventory = Self.inventory.replacingOccurrences(of: "unknown: deny", with: "  \"52:54:00:12:34:57\": {}\nunknown: deny")
        let s = try Server(name: "reports", inventory: inventory)
        let report = try Self.reportURL(port: s.port, mac: "52:54:00:12:34:56", host: "127.0.0.1:\(s.port)")
        func post(_ url: String, _ body: String) throws -> String {
            try curl("-o /dev/null -w '%{http_code}' -X POST -d '\(body)' '\(url)'").stdout
        }
        #expect(try post(report, #"{"stage": "pulling", "image": "10.0.2.2:5000/test/hello"}"#) == "204")
        #expect(try post(report, #"{"stage": "hacking"}"#) == "400")
        #expect(try post("\(s.base)/v1/report/not-a-mac", "x") == "400")
        // No token, a changed token, the token of another host's boot.
        let other = try Self.reportURL(port: s.port, mac: "52:54:00:12:34:57", host: "127.0.0.1:\(s.port)").replacingOccurrences(of: "52:54:00:12:34:57", with: "52:54:00:12:34:56")
        let changed = report.dropLast() + (report.hasSuffix("0") ? "1" : "0")
        for forged in ["\(s.base)/v1/report/52:54:00:12:34:56", String(changed), other] {
            #expect(try post(forged, #"{"stage": "failure", "detail": "forged"}"#) == "403", "\(forged)")
        }
        #expect(try post(report, #"{"stage": "kexec", "detail": "booting"}"#) == "204")
        #expect(try curl("\(s.base)/metrics").stdout.contains("wyrcan_reports_rejected_total 3\n"))

        func lastReport(_ server: Server) throws -> [String: Any]? {
            let hosts = try JSONSerialization.jsonObject(with: Data(try curl("\(server.base)/v1/hosts").stdout.utf8)) as? [String: Any]
            let list = hosts?["hosts"] as? [[String: Any]]
            #expect(list?.contains { $0["mac"] as? String == "52:54:00:12:34:58" && $0["mode"] as? String == "exit" } == true)
            return list?.first { $0["mac"] as? String == "52:54:00:12:34:56" }?["lastReport"] as? [String: Any]
        }
        let before = try lastReport(s)
        #expect(before?["stage"] as? String == "kexec" && before?["count"] as? Int == 2, "\(String(describing: before))")
        s.process.stop()
        let restarted = try Server(name: "reports-restarted", inventory: inventory, state: s.dir + "/state.db")
        let after = try lastReport(restarted)
        #expect(after?["stage"] as? String == "kexec" && after?["count"] as? Int == 2 && after?["received"] as? String == before?["received"] as? String,
                "\(String(describing: after))")
        // The same secret after the restart: the boot's token still counts.
        #expect(try post(report.replacingOccurrences(of: "127.0.0.1:\(s.port)", with: "127.0.0.1:\(restarted.port)"), #"{"stage": "exit"}"#) == "204")
    }

    /// `kill -9` while reports stream in: every report that got a 204 is in the store after a
    /// restart (the store may hold a few more: committed, but the answer never left).
    @Test func aKilledServerLosesNoAcknowledgedReport() throws {
        // (Every boot and report kept: a new boot every 50 reports, under the per-boot cap.)
        let s = try Server(name: "crash", extra: ["--keep-boots", "100000"])
        let client = s.dir + "/post.py"
        try """
            import http.client, sys, threading, urllib.parse
            port = int(sys.argv[1])
            acknowledged = [0] * 8
            def new_boot():
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                c.request("GET", "/cmdline?mac=52:54:00:12:34:56")
                text = c.getresponse().read().decode(); c.close()
                return urllib.parse.urlsplit(next(t for t in text.split() if t.startswith("wyr.report="))[len("wyr.report="):])
            def post(i):
                sent = 0
                while True:
                    try:
                        if sent % 50 == 0: url = new_boot()
                        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                        c.request("POST", url.path + "?" + url.query, body=b'{"stage": "pulling", "detail": "load"}')
                        r = c.getresponse(); r.read(); c.close()
                    except (OSError, StopIteration):
                        return
                    sent += 1
                    if r.status == 204: acknowledged[i] += 1
            threads = [threading.Thread(target=post, args=(i,)) for i in range(8)]
            for t in threads: t.start()
            for t in threads: t.join()
            print(sum(acknowledged))
            """.write(toFile: client, atomically: true, encoding: .utf8)
        let posting = try Background("/usr/bin/python3", [client, String(s.port)], log: s.dir + "/post.log")
        try Sys.waitFor("reports streaming in") { (try? Sys.sh("curl -s \(s.base)/metrics").stdout.contains("endpoint=\"v1/report\",status=\"204\"} 2")) == true }
        usleep(1_500_000)
        kill(s.process.process.processIdentifier, SIGKILL)
        posting.process.waitUntilExit()
        let acknowledged = try #require(Int(posting.output.trimmingCharacters(in: .whitespacesAndNewlines)), "\(posting.output)")
        s.process.process.waitUntilExit()
        let hosts = try Sys.run(Sys.binary("wyrcan-serve"), ["hosts", "--state", s.dir + "/state.db"])
        let row = hosts.stdout.split(separator: "\n").first { $0.hasPrefix("52:54:00:12:34:56") }
        let stored = try #require(row.flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true)[3]) }, "\(hosts.stdout)\(hosts.stderr)")
        #expect(acknowledged > 100 && stored >= acknowledged && stored <= acknowledged + 8, "acknowledged \(acknowledged), stored \(stored)")
    }

    @Test func reloadKeepsServingOnABadFile() throws {
        let s = try Server(name: "reload")
        let url = "'\(s.base)/cmdline?mac=52:54:00:12:34:56'"
        let before = try curl(url).stdout
        // A broken file: the old inventory keeps serving and the log says why.
        try Self.inventory.replacingOccurrences(of: "unknown: deny", with: "  \"52:54:00:12:34:59\": {image: \"Bad/Image\"}\nunknown: deny").write(toFile: s.dir + "/fleet.yaml", atomically: true, encoding: .utf8)
        try Sys.waitFor("reload error in the log", seconds: 10) { s.process.output.contains("still serving the previous one") }
        #expect(s.process.output.contains("fleet.yaml:7: hosts.52:54:00:12:34:59.image"))
        #expect(Self.anyBoot(try curl(url).stdout) == Self.anyBoot(before))
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
        let serve = try Sys.run(Sys.binary("wyrcan-serve"), ["--config", dir + "/fleet.yaml", "--assets", dir, "--state", dir + "/state.db", "--http", "127.0.0.1:0"])
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
