import Foundation
import Testing
import WyrcanChain
@testable import WyrcanBoot

/// The `up` hook Wyrcan adds to the booted system's initrd: an enabled unit and a script that
/// POSTs `up` to the boot's report URL — with curl, and with bash alone (as on the Debian
/// example, which has neither curl nor wget) — and what it adds.
@Suite(.serialized) struct UpReportTests {
    /// A one-shot HTTP server on loopback that answers 204 and writes each request it got.
    final class Receiver {
        let process = Process()
        let port: Int
        let log: String

        init(dir: String) throws {
            port = Int.random(in: 20000...40000)
            log = dir + "/requests"
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = ["-c", """
                import http.server, sys
                class H(http.server.BaseHTTPRequestHandler):
                    def do_POST(self):
                        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                        open(sys.argv[2], "a").write(self.path + " " + body.decode() + "\\n")
                        self.send_response(204); self.end_headers()
                    def log_message(self, *a): pass
                http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
                """, String(port), log]
            try process.run()
            usleep(500_000)
        }

        deinit {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    func run(_ script: String, path: String) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = [script]
        p.environment = ["PATH": path]
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }

    @Test func theHookReportsUpWithCurlOrBashAlone() throws {
        let dir = try FileSystem.temporaryDirectory(prefix: "up-report")
        defer { FileSystem.removeTree(dir) }
        let receiver = try Receiver(dir: dir)
        var hooks = VolumeHooks(args: WyrcanArgs())
        hooks.overlay = dir + "/overlay"
        try hooks.injectUpReport(UpReport(url: "http://127.0.0.1:\(receiver.port)/v1/report/52:54:00:12:34:56?boot=0123456789abcdef&token=t0", pin: nil, caFile: nil))
        let script = hooks.overlay + VolumeHooks.upScript
        let unit = hooks.overlay + "/etc/systemd/system/" + VolumeHooks.upUnit
        #expect(FileManager.default.fileExists(atPath: hooks.overlay + "/etc/systemd/system/multi-user.target.wants/" + VolumeHooks.upUnit))
        #expect(try String(contentsOfFile: unit, encoding: .utf8).contains("After=network-online.target multi-user.target"))
        let mode = try FileManager.default.attributesOfItem(atPath: script)[.posixPermissions] as? Int
        #expect(mode == 0o700)
        // curl (on PATH here), then bash alone: a PATH with only a directory holding bash.
        let bashOnly = dir + "/bin"
        try FileManager.default.createDirectory(atPath: bashOnly, withIntermediateDirectories: true)
        for tool in ["bash", "uname", "cut", "sleep"] { try FileManager.default.createSymbolicLink(atPath: "\(bashOnly)/\(tool)", withDestinationPath: "/usr/bin/\(tool)") }
        #expect(try run(script, path: "/usr/bin:/bin") == 0)
        #expect(try run(script, path: bashOnly) == 0)
        let requests = try String(contentsOfFile: receiver.log, encoding: .utf8).split(separator: "\n")
        #expect(requests.count == 2, "\(requests)")
        #expect(requests.allSatisfy { $0.hasPrefix("/v1/report/52:54:00:12:34:56?boot=0123456789abcdef&token=t0 {\"stage\": \"up\", \"detail\": \"") }, "\(requests)")
        let added = [script, unit].compactMap { FileSystem.size($0) }.reduce(0, +)
        #expect(added < 3000, "the hook adds \(added) bytes")
    }

    /// A report server trusted by its key pin alone: curl checks the pin, not a chain (-k), and
    /// wget (which would check neither) is not used.
    @Test func aPinnedServerIsReachedWithCurlOnly() throws {
        let dir = try FileSystem.temporaryDirectory(prefix: "up-pin")
        defer { FileSystem.removeTree(dir) }
        var hooks = VolumeHooks(args: WyrcanArgs())
        hooks.overlay = dir
        let pin = "sha256//" + String(repeating: "A", count: 43) + "="
        try hooks.injectUpReport(UpReport(url: "https://10.0.2.2:8443/v1/report/52:54:00:12:34:56?boot=0123456789abcdef&token=t0", pin: pin, caFile: nil))
        let text = try String(contentsOfFile: dir + VolumeHooks.upScript, encoding: .utf8)
        #expect(text.contains("curl -fsS -m 10 -k --pinnedpubkey '\(pin)' -X POST") && text.contains("elif false; then"), "\(text)")
        #expect(!text.contains("could not reach $url"))
    }
}
