import Foundation
import Testing

/// A real iPXE ROM (Debian's ipxe-qemu, in QEMU under TCG) netboots from a running wyrcan-serve:
/// bootstrap → per-host script chosen by the NIC's MAC → kernel + initrd from /assets → the
/// initrd prints /proc/cmdline, which must be exactly what the inventory says.
@Suite(.serialized) struct IPXENetbootSystemTests {
    @Test(.timeLimit(.minutes(5)))
    func romNetbootsTheHostsEntry() throws {
        let dir = try Sys.tempDir("ipxe")
        let kernel = try Sys.run(Sys.root + "/scripts/fetch-kernel", [])
        try #require(kernel.status == 0, "fetch-kernel: \(kernel.stderr)")
        try FileManager.default.createDirectory(atPath: dir + "/assets/wyrcan/1", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: kernel.stdout.trimmingCharacters(in: .whitespacesAndNewlines), toPath: dir + "/assets/wyrcan/1/wyrcan.kernel")
        let initrd = try Sys.run(Sys.root + "/scripts/build-test-initrd", [dir + "/assets/wyrcan/1/wyrcan.initrd", "WYRCAN-IPXE-MARKER"])
        try #require(initrd.status == 0, "build-test-initrd: \(initrd.stderr)")
        let inventory = """
            releases:
              stable: {kernel: wyrcan/1/wyrcan.kernel, initrd: wyrcan/1/wyrcan.initrd}
            defaults: {release: stable, image: 10.0.2.2:5000/test/hello, kernel_args: [console=ttyS0]}
            hosts:
              "52:54:00:12:34:56": {args: ['motd="hello world"', "quiet log-buf-len=1M"]}
              "52:54:00:12:34:57": {image: 10.0.2.2:5000/test/other}
            unknown: deny

            """
        try inventory.write(toFile: dir + "/fleet.yaml", atomically: true, encoding: .utf8)
        let port = Sys.freePort()
        let server = try Background(Sys.binary("wyrcan-serve"), ["--config", dir + "/fleet.yaml", "--assets", dir + "/assets", "--state", dir + "/state.db", "--http", "127.0.0.1:\(port)"], log: dir + "/serve.log")
        defer { server.stop() }
        try Sys.waitFor("wyrcan-serve") { (try? Sys.sh("curl -sf http://127.0.0.1:\(port)/healthz").stdout) == "ok\n" }
        // What the guest must see: the cmdline as the guest reaches the server (10.0.2.2).
        let expected = try Sys.sh("curl -sf -H 'Host: 10.0.2.2:\(port)' 'http://127.0.0.1:\(port)/cmdline?mac=52:54:00:12:34:56'").stdout.trimmingCharacters(in: .newlines)
        #expect(expected.contains("wyr.img=10.0.2.2:5000/test/hello"))

        let qemu = try Sys.run("/usr/bin/timeout", ["180", "qemu-system-x86_64", "-accel", "tcg", "-m", "1G", "-display", "none",
            "-serial", "file:\(dir)/console.log", "-monitor", "none", "-no-reboot",
            "-netdev", "user,id=n0,bootfile=http://10.0.2.2:\(port)/boot.ipxe", "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56", "-boot", "n"])
        let console = (try? String(contentsOfFile: dir + "/console.log", encoding: .utf8)) ?? ""
        let parts = console.components(separatedBy: "WYRCAN-IPXE-MARKER cmdline=")
        let marker = parts.count > 1 ? parts[1].split(whereSeparator: \.isNewline).first.map(String.init) : nil
        #expect(marker != nil, "no marker; qemu exit \(qemu.status); console:\n\(console.suffix(3000))\nserver log:\n\(server.output)")
        if let marker {
            // (The same but for the boot id and token: each answer starts a boot of its own.)
            #expect(ServeSystemTests.anyBoot(marker.trimmingCharacters(in: .whitespaces)) == ServeSystemTests.anyBoot("initrd=wyrcan.initrd " + expected))
        }
        let metrics = try Sys.sh("curl -s http://127.0.0.1:\(port)/metrics").stdout
        #expect(metrics.contains("wyrcan_host_boots_total{mac=\"52:54:00:12:34:56\"} 1"), "\(metrics)")
        #expect(metrics.contains("endpoint=\"boot.ipxe\",status=\"200\""))
    }
}
