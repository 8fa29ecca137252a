import Foundation
import Testing

/// `wyrcan plan` as a user runs it: output, JSON, exit codes and one-line errors.
@Suite struct PlanCommandTests {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func binary(_ name: String) -> String {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [dir.appendingPathComponent(name).path, ".build/debug/\(name)"]
        where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        return ".build/debug/\(name)"
    }

    func run(_ name: String, _ arguments: [String]) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: name.hasPrefix("/") ? name : Self.binary(name))
        p.arguments = arguments
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    @Test func humanReadable() throws {
        let r = try run("wyrcan", ["plan", "--cmdline", #"console=ttyS0 wyr.img=registry.local/os/debian wyr.arg="quiet log-buf-len=1M" wyr.arg=print-fatal-signals=1"#])
        #expect(r.status == 0)
        #expect(r.stdout.contains("Image:     registry.local/os/debian:latest"))
        #expect(r.stdout.contains("Cmdline:   quiet log-buf-len=1M print-fatal-signals=1"))
        #expect(r.stdout.contains("/etc/systemd/network/autoconf.network"))
    }

    @Test func json() throws {
        let r = try run("wyrcan", ["plan", "--json", "--image-cmdline", "root=live rw",
                                   "--cmdline", "wyr.img=r.io/os wyr.arg=quiet wyr.efi=write wyr.net.lan.Network.DHCP=yes"])
        #expect(r.status == 0)
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        #expect(object?["image"] as? String == "r.io/os:latest")
        #expect(object?["cmdline"] as? String == "root=live rw quiet")
        #expect(object?["efi"] as? String == "write")
        #expect((object?["networkFiles"] as? [String: String])?["/etc/systemd/network/lan.network"] == "[Network]\nDHCP=yes\n")
        #expect((object?["volumes"] as? [Any])?.isEmpty == true)
    }

    @Test func badInputIsOneLineAndNonZero() throws {
        let r = try run("wyrcan", ["plan", "--cmdline", "wyr.img=r.io/os wyr.net.lan.Network=yes"])
        #expect(r.status != 0)
        #expect(r.stdout.isEmpty)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1)
        #expect(lines.first?.hasPrefix("wyrcan: error: wyr.net.lan.Network:") == true)
    }

    @Test func needsExactlyOneSource() throws {
        #expect(try run("wyrcan", ["plan"]).status != 0)
        #expect(try run("wyrcan", ["plan", "--proc", "--cmdline", "x"]).status != 0)
    }

    @Test func procReadsTheRunningKernel() throws {
        let r = try run("wyrcan", ["plan", "--proc", "--json"])
        // The build machine's own cmdline names no image; the plan still succeeds.
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("\"networkFiles\""))
    }

    /// An unreadable /proc/cmdline fails with one line on stderr and status 1, not a help text
    /// on stdout with status 0. (In a private mount namespace, /proc/cmdline is covered with the
    /// memory file of a process that has exited: opening it fails.)
    @Test func procUnreadableIsAnErrorOnStderr() throws {
        let r = try run("/usr/bin/unshare", ["--mount", "--", "/bin/sh", "-c", "mount --bind /proc/self/mem /proc/cmdline && exec \"$0\" plan --proc", Self.binary("wyrcan")])
        #expect(r.status == 1)
        #expect(r.stdout.isEmpty)
        #expect(r.stderr.hasPrefix("wyrcan: error: cannot read the running kernel's cmdline: ") && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    }

    @Test func helpDocumentsTheGrammar() throws {
        let r = try run("wyrcan", ["plan", "--help"])
        for needle in ["wyr.img=REF", "wyr.arg=ARG", "wyr.net.[KIND.]FILE.SECTION[@N].KEY=VAL", "wyr.efi=write|clear",
                       "wyr.insecure=HOST[:PORT]", "wyr.platform=OS/ARCH", "wyr.rescue", "wyr.report=URL", "NESTING", "EXAMPLES"] {
            #expect(r.stdout.contains(needle), "help lacks \(needle)")
        }
    }

    @Test func serverBuildsChainCmdlines() throws {
        let r = try run("wyrcan-serve", ["cmdline", "--image", "r.io/wyrcan:2", "--image", "r.io/os", "--arg", "quiet log-buf-len=1M"])
        #expect(r.status == 0)
        let cmdline = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(cmdline == "wyr.img=r.io/wyrcan:2 wyr.arg=wyr.img=r.io/os wyr.arg=wyr.arg=quiet wyr.arg=wyr.arg=log-buf-len=1M")
        let plan = try run("wyrcan", ["plan", "--json", "--cmdline", cmdline])
        #expect(plan.stdout.contains(#""final" : ["#))
    }
}
