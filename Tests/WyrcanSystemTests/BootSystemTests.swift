import Foundation
import Testing
import WyrcanTestSupport

/// Wyrcan's own initramfs under QEMU (TCG) with the Debian kernel, pulling from a local
/// docker-registry through user networking (guest 10.0.2.2 = host loopback).
@Suite(.serialized) struct BootSystemTests {
    /// Built once per test run: Wyrcan's kernel + initrd + OCI image, a test image, a registry.
    final class Rig: @unchecked Sendable {
        let dir: String
        let registry: LocalRegistry
        var guestRegistry: String { "10.0.2.2:\(registry.port)" }

        init() throws {
            dir = try Sys.tempDir("boot")
            // Built by scripts/test before `swift test` (a nested swift build would wait for the lock).
            for artifact in ["/out/wyrcan.kernel", "/out/wyrcan.initrd", "/out/wyrcan-oci/index.json"]
            where !FileManager.default.fileExists(atPath: Sys.root + artifact) {
                throw SysError("\(artifact) is missing: run scripts/build-initramfs --oci out/wyrcan-oci first (make test does)")
            }
            let image = try Sys.run(Sys.root + "/scripts/build-test-image", [dir + "/hello", "WYRCAN-BOOT-MARKER", "console=ttyS0"])
            guard image.status == 0 else { throw SysError("build-test-image: \(image.stderr)") }
            registry = try LocalRegistry(name: "boot")
            try registry.push(layout: dir + "/hello", tag: "latest", to: "test/hello")
            try registry.push(layout: Sys.root + "/out/wyrcan-oci", tag: "latest", to: "wyrcan/wyrcan")
            // An image without a kernel: for the failure test.
            try Sys.buildImage("""
                {"images": [{"layers": [{"entries": [{"path": "init", "type": "file", "content": "#!/bin/sh", "mode": 493}]}]}]}
                """, layout: dir + "/broken")
            try registry.push(layout: dir + "/broken", tag: "latest", to: "test/broken")
        }

        /// QEMU (TCG) booting Wyrcan from out/ with `cmdline`, the serial console on `serial`.
        static func qemuArguments(cmdline: String, serial: String, memory: String = "2G", kernel: String = "wyrcan.kernel",
                                  initrd: String = "wyrcan.initrd", nic: String = "virtio-net-pci", extra: [String] = []) -> [String] {
            ["-accel", "tcg", "-m", memory, "-display", "none", "-serial", serial, "-monitor", "none", "-no-reboot"] + extra + [
             "-kernel", Sys.root + "/out/" + kernel, "-initrd", Sys.root + "/out/" + initrd, "-append", cmdline,
             "-netdev", "user,id=n0", "-device", "\(nic),netdev=n0,mac=52:54:00:12:34:56"]
        }

        /// Boots Wyrcan with `cmdline`; returns the serial console text and the seconds it took.
        /// `kernel`: Wyrcan's bzImage, or `wyrcan.vmlinux` (QEMU starts that ELF at its PVH entry).
        func boot(_ name: String, cmdline: String, timeout: Int = 240, efiVars: String? = nil, disk: String? = nil,
                  nic: String = "virtio-net-pci", kernel: String = "wyrcan.kernel") throws -> (String, Double) {
            let log = "\(dir)/\(name).console"
            let start = Date()
            let firmware = efiVars.map {
                ["-drive", "if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE.fd", "-drive", "if=pflash,format=raw,file=\($0)"]
            } ?? []
            let drive = disk.map { ["-drive", "file=\($0),if=virtio,format=raw"] } ?? []
            _ = try Sys.run("/usr/bin/timeout", ["\(timeout)", "qemu-system-x86_64"]
                + Self.qemuArguments(cmdline: cmdline, serial: "file:\(log)", kernel: kernel, nic: nic, extra: firmware + drive))
            return ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "", Date().timeIntervalSince(start))
        }

        /// Boots Wyrcan with the serial console on QEMU's stdin/stdout; once the console shows
        /// `prompt`, types `input`, waits up to 30 s for `answer`, then stops QEMU (by PID).
        /// Returns the console text.
        func bootAndType(_ name: String, cmdline: String, prompt: String, input: String, answer: String, timeout: Double,
                         memory: String = "2G") throws -> String {
            let log = "\(dir)/\(name).console"
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            let qemu = Process()
            let stdin = Pipe()
            qemu.executableURL = URL(fileURLWithPath: "/usr/bin/qemu-system-x86_64")
            qemu.arguments = Self.qemuArguments(cmdline: cmdline, serial: "stdio", memory: memory)
            qemu.standardInput = stdin
            qemu.standardOutput = FileHandle(forWritingAtPath: log)!
            qemu.standardError = FileHandle.nullDevice
            try qemu.run()
            defer {
                if qemu.isRunning { kill(qemu.processIdentifier, SIGKILL) }
                qemu.waitUntilExit()
            }
            func console() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
            func wait(for text: String, seconds: Double) -> Bool {
                let end = Date().addingTimeInterval(seconds)
                while Date() < end && qemu.isRunning {
                    if console().contains(text) { return true }
                    usleep(200_000)
                }
                return console().contains(text)
            }
            if wait(for: prompt, seconds: timeout) {
                usleep(1_000_000)  // (the shell is up once it has printed its first prompt)
                stdin.fileHandleForWriting.write(Data((input + "\n").utf8))
                _ = wait(for: answer, seconds: 30)
            }
            return console()
        }
    }

    /// Suites run in parallel and several share this rig (VolumeBootSystemTests too): built once
    /// — two builders in the same directory rebuilt each other's test image.
    static let shared = SharedRig(build: { try Rig() }, server: { $0.registry.server })
    static func rig() throws -> Rig { try shared.get() }

    static func marker(_ console: String, _ name: String = "WYRCAN-BOOT-MARKER") -> String? {
        let parts = console.components(separatedBy: "\(name) cmdline=")
        guard parts.count > 1 else { return nil }
        return parts[1].split(whereSeparator: \.isNewline).first.map { String($0).trimmingCharacters(in: .whitespaces) }
    }

    /// Drivers load by modalias: with an Intel e1000e NIC instead of virtio, Wyrcan loads e1000e
    /// (and not virtio_net, nor the other NIC drivers it ships) and boots the image.
    @Test(.timeLimit(.minutes(10)))
    func anotherNICIsFoundByItsModalias() throws {
        let rig = try Self.rig()
        let cmdline = "console=ttyS0 wyr.img=\(rig.guestRegistry)/test/hello wyr.insecure=\(rig.guestRegistry) wyr.arg=nic=e1000e"
        let (console, _) = try rig.boot("e1000e", cmdline: cmdline, nic: "e1000e")
        #expect(Self.marker(console) == "console=ttyS0 nic=e1000e", "console:\n\(console.suffix(4000))")
        let wyrcanStage = console.components(separatedBy: "● Booting").first ?? ""
        #expect(wyrcanStage.contains("e1000e: Intel(R) PRO/1000 Network Driver"), "\(wyrcanStage.suffix(3000))")
        #expect(!wyrcanStage.contains("igb: Intel(R) Gigabit Ethernet Network Driver") && !wyrcanStage.contains("ixgbe: Intel(R) 10"))
    }

    @Test(.timeLimit(.minutes(10)))
    func directBootDeliversTheArgsExactly() throws {
        let rig = try Self.rig()
        // A fleet server on loopback receives the boot reports.
        let serve = try ServeSystemTests.Server(name: "boot-reports")
        let report = try ServeSystemTests.reportURL(port: serve.port, mac: "52:54:00:12:34:56")
        let cmdline = "console=ttyS0 wyr.img=\(rig.guestRegistry)/test/hello wyr.insecure=\(rig.guestRegistry) wyr.report=\(report) "
            + #"wyr.arg="quiet log-buf-len=1M" wyr.arg=print-fatal-signals=1 wyr.arg="motd='two words'""#
        let (console, seconds) = try rig.boot("direct", cmdline: cmdline)
        let marker = Self.marker(console)
        #expect(marker == #"console=ttyS0 quiet log-buf-len=1M print-fatal-signals=1 motd="two words""#, "console:\n\(console.suffix(4000))")
        #expect(console.contains("● Getting \(rig.guestRegistry)/test/hello:latest"))
        #expect(console.contains("● Booting \(rig.guestRegistry)/test/hello:latest ("))
        let hosts = try Sys.sh("curl -s http://127.0.0.1:\(serve.port)/v1/hosts").stdout
        #expect(hosts.contains("\"stage\" : \"kexec\""), "\(hosts)")
        print("direct boot: \(Int(seconds)) s from QEMU start to the test image's marker (TCG)")
    }

    /// The uncompressed kernel for virtual machines (out/wyrcan.vmlinux, started at its PVH entry,
    /// without the bzImage's self-decompression) boots the agent, which kexecs the image's bzImage.
    @Test(.timeLimit(.minutes(10)))
    func pvhKernelBootsTheImage() throws {
        // (Only this test needs it: build-initramfs warns, not fails, for a kernel it cannot unpack.)
        try #require(FileManager.default.fileExists(atPath: Sys.root + "/out/wyrcan.vmlinux"),
                     "out/wyrcan.vmlinux is missing: run scripts/build-initramfs (make test does)")
        let rig = try Self.rig()
        let cmdline = "console=ttyS0 wyr.img=\(rig.guestRegistry)/test/hello wyr.insecure=\(rig.guestRegistry) wyr.arg=pvh=1"
        let (console, seconds) = try rig.boot("pvh", cmdline: cmdline, kernel: "wyrcan.vmlinux")
        #expect(console.contains("● Booting \(rig.guestRegistry)/test/hello:latest ("), "console:\n\(console.suffix(4000))")
        #expect(Self.marker(console) == "console=ttyS0 pvh=1", "console:\n\(console.suffix(4000))")
        print("PVH boot: \(Int(seconds)) s from QEMU start to the test image's marker (TCG)")
    }

    /// scripts/extract-vmlinux: the ELF inside Wyrcan's bzImage (with its PVH entry, or it says
    /// so), and a one-line error naming a file that is not a bzImage, writing nothing.
    @Test func extractVmlinuxChecksWhatItExtracts() throws {
        let dir = try Sys.tempDir("vmlinux")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let script = Sys.root + "/scripts/extract-vmlinux"
        let good = try Sys.run(script, [Sys.root + "/out/wyrcan.kernel", dir + "/vmlinux"])
        #expect(good.status == 0, "\(good.stderr)")
        let file = try #require(FileHandle(forReadingAtPath: dir + "/vmlinux"))
        defer { try? file.close() }
        #expect(Array(try file.read(upToCount: 4) ?? Data()) == [0x7f, 0x45, 0x4c, 0x46])
        for (input, reason) in [("/README.md", "not an x86 bzImage (no boot-protocol header)"), ("/missing-kernel", "No such file or directory")] {
            let bad = try Sys.run(script, [Sys.root + input, dir + "/not-a-kernel"])
            #expect(bad.status != 0)
            #expect(bad.stderr == "extract-vmlinux: \(Sys.root + input): \(reason)\n", "\(bad.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/not-a-kernel"))
        }
    }

    @Test(.timeLimit(.minutes(10)))
    func chainedSelfUpgradeCarriesNestedArgs() throws {
        let rig = try Self.rig()
        let cmd = try Sys.run(Sys.binary("wyrcan-serve"), ["cmdline", "--image", "\(rig.guestRegistry)/wyrcan/wyrcan",
            "--image", "\(rig.guestRegistry)/test/hello", "--stage-param", "wyr.insecure=\(rig.guestRegistry)",
            "--stage-param", "console=ttyS0", "--arg", #"motd="chained and spaced""#, "--arg", "quiet"])
        #expect(cmd.status == 0, "\(cmd.stderr)")
        let (console, seconds) = try rig.boot("chain", cmdline: cmd.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(console.components(separatedBy: "● Wyrcan ").count - 1 == 2, "two Wyrcan stages ran; console:\n\(console.suffix(4000))")
        #expect(console.contains("wyr.depth=1"), "console:\n\(console.suffix(4000))")
        #expect(Self.marker(console) == #"console=ttyS0 motd="chained and spaced" quiet"#, "console:\n\(console.suffix(4000))")
        print("chained boot: \(Int(seconds)) s")
    }

    @Test(.timeLimit(.minutes(10)))
    func brokenImageIsExplainedNotHung() throws {
        let rig = try Self.rig()
        let (console, seconds) = try rig.boot("broken", cmdline: "console=ttyS0 wyr.img=\(rig.guestRegistry)/test/broken wyr.insecure=\(rig.guestRegistry)", timeout: 180)
        #expect(console.contains("● Failure: the image has no /boot/wyrcan.kernel: install a kernel in the image and symlink it there"), "console:\n\(console.suffix(3000))")
        #expect(console.contains("● Rebooting in 30 s"), "console:\n\(console.suffix(3000))")
        #expect(seconds < 170, "QEMU exited by itself (reboot with -no-reboot), it did not hang; console:\n\(console.suffix(3000))")
    }

    /// Static settings from `wyr.net.*` instead of DHCP (QEMU's user network routes any
    /// 10.0.2.x address): address, gateway, DNS, and the MTU of a `.link` file.
    @Test(.timeLimit(.minutes(10)))
    func staticNetworkSettingsAreApplied() throws {
        let rig = try Self.rig()
        let net = "wyr.net.lan.Match.Name=eth0 wyr.net.lan.Network.Address=10.0.2.77/24 wyr.net.lan.Network.Gateway=10.0.2.2 "
            + "wyr.net.lan.Network.DNS=10.0.2.3 wyr.net.link.lan.Match.Name=eth0 wyr.net.link.lan.Link.MTUBytes=1400"
        let cmdline = "console=ttyS0 wyr.img=\(rig.guestRegistry)/test/hello wyr.insecure=\(rig.guestRegistry) \(net) wyr.arg=net=static"
        let (console, _) = try rig.boot("static-net", cmdline: cmdline)
        #expect(Self.marker(console) == "console=ttyS0 net=static", "console:\n\(console.suffix(4000))")
        let wyrcanStage = console.components(separatedBy: "● Booting").first ?? ""
        #expect(wyrcanStage.contains("address 10.0.2.77/24 on eth0"), "\(wyrcanStage.suffix(3000))")
        #expect(wyrcanStage.contains("default route via 10.0.2.2"), "\(wyrcanStage.suffix(3000))")
        #expect(!wyrcanStage.contains("DHCP on"), "no DHCP when only static addresses are given: \(wyrcanStage.suffix(3000))")
    }

    /// A registry that never answers: the pull is retried with backoff (3 attempts), then the
    /// failure is explained and, with wyr.rescue, a shell runs on the console and takes commands.
    @Test(.timeLimit(.minutes(8)))
    func unreachableRegistryIsRetriedThenARescueShell() throws {
        let rig = try Self.rig()
        let closed = "10.0.2.2:\(Sys.freePort())"
        let console = try rig.bootAndType("rescue", cmdline: "console=ttyS0 wyr.img=\(closed)/test/hello wyr.insecure=\(closed) wyr.rescue",
                                          prompt: "Rescue shell:", input: "echo RESCUE-$((6*7))", answer: "RESCUE-42", timeout: 360)
        #expect(console.contains("attempt 1 of 3 failed: network error: "), "console:\n\(console.suffix(3000))")
        // 20 s then 45 s, shortened by up to a fifth at random (RetryPolicy.bootAttempts).
        let waits = console.components(separatedBy: "retrying in ").dropFirst().compactMap { Int($0.prefix { $0.isNumber }) }
        #expect(waits.count == 2 && (16...20).contains(waits[0]) && (36...45).contains(waits[1]), "console:\n\(console.suffix(3000))")
        #expect(console.contains(" s (attempt 2 of 3)") && console.contains(" s (attempt 3 of 3)"))
        #expect(console.contains("● Failure: network error: http://\(closed)/v2/test/hello/manifests/latest"), "console:\n\(console.suffix(3000))")
        #expect(console.contains("Rescue shell: type 'reboot -f' to restart"))
        #expect(console.contains("RESCUE-42"), "the shell took a command:\n\(console.suffix(2000))")
        #expect(!console.contains("● Rebooting"))
        #expect(console.components(separatedBy: "● Failure:").count == 2, "the last failure is said once")
    }

    /// Too little memory for the image: refused before the download, said once and plainly
    /// (192 MiB leaves ≈ 74 MiB available after Wyrcan's own boot; the test image needs ≈ 90).
    @Test(.timeLimit(.minutes(5)))
    func tooLittleMemoryIsRefusedClearly() throws {
        let rig = try Self.rig()
        let console = try rig.bootAndType("small-memory", cmdline: "console=ttyS0 wyr.img=\(rig.guestRegistry)/test/hello wyr.insecure=\(rig.guestRegistry) wyr.rescue",
                                          prompt: "Rescue shell:", input: "echo MEM-$((40+2))", answer: "MEM-42", timeout: 200, memory: "192M")
        #expect(console.contains("● Failure: the image needs about "), "console:\n\(console.suffix(3000))")
        #expect(console.contains("MiB are available; give the machine more memory"), "console:\n\(console.suffix(3000))")
        #expect(console.components(separatedBy: "● Failure:").count == 2, "the failure is said once:\n\(console.suffix(3000))")
        #expect(!console.contains("Out of memory") && console.contains("MEM-42"), "console:\n\(console.suffix(3000))")
    }

    /// Images made to hurt the converter: a member path of ≈ 11 000 components (it overflowed
    /// the stack: as /init, a kernel panic) and a sparse bomb (16 members claiming 4 GiB each in
    /// a 20 KB layer). Each is refused in one line, not retried, and Wyrcan goes on to reboot.
    @Test(.timeLimit(.minutes(6)))
    func hostileImagesAreRefusedNotAPanic() throws {
        let rig = try Self.rig()
        var deep = TestTar()
        deep.add(String(repeating: "a/", count: 11_000) + "f", content: [1])
        var bomb = TestTar()
        for i in 0..<16 { bomb.addSparse("var/log/lastlog\(i)", realSize: 4_294_967_295, offset: 4_294_967_294, data: [1]) }
        bomb.add("boot/wyrcan.kernel", content: Array("kernel".utf8))
        bomb.add("init", content: Array("#!/bin/sh\n".utf8), mode: 0o755)
        for (name, tar, failure) in [("deep", deep, "the path is longer than the 4095 bytes Linux allows"),
                                     ("sparse", bomb, "the image unpacks to 64.0 GiB, more than the ")] {
            try Data(tar.archive).write(to: URL(fileURLWithPath: "\(rig.dir)/\(name).tar"))
            try Sys.buildImage(#"{"images": [{"layers": [{"tar": "\#(rig.dir)/\#(name).tar"}]}]}"#, layout: "\(rig.dir)/\(name)")
            try rig.registry.push(layout: "\(rig.dir)/\(name)", tag: "latest", to: "hostile/\(name)")
            let console = try Sys.runUntil("/usr/bin/qemu-system-x86_64", Rig.qemuArguments(
                cmdline: "console=ttyS0 wyr.img=\(rig.guestRegistry)/hostile/\(name) wyr.insecure=\(rig.guestRegistry)", serial: "file:\(rig.dir)/hostile-\(name).console"),
                console: "\(rig.dir)/hostile-\(name).console", until: ["● Rebooting", "Kernel panic"], timeout: 200)
            #expect(console.contains("● Failure: ") && console.contains(failure), "\(name): console:\n\(console.suffix(3000))")
            #expect(console.contains("● Rebooting in 30 s") && !console.contains("Kernel panic") && !console.contains("attempt 1 of 3 failed"), "\(name): \(console.suffix(2000))")
        }
    }

    @Test(.timeLimit(.minutes(5)))
    func noImageShowsHelp() throws {
        let rig = try Self.rig()
        let (console, _) = try rig.boot("noimage", cmdline: "console=ttyS0", timeout: 150)
        #expect(console.contains("No container image to boot"), "console:\n\(console.suffix(3000))")
        #expect(console.contains("wyr.img=registry.example.com/os/debian:12"))
    }

    /// OVMF with a writable vars file: store the config, boot from it alone, clear it.
    @Test(.timeLimit(.minutes(12)))
    func efiPersistence() throws {
        let rig = try Self.rig()
        let vars = rig.dir + "/OVMF_VARS.fd"
        try? FileManager.default.removeItem(atPath: vars)
        try FileManager.default.copyItem(atPath: "/usr/share/OVMF/OVMF_VARS.fd", toPath: vars)
        let insecure = "wyr.insecure=\(rig.guestRegistry)"

        let (first, _) = try rig.boot("efi-write", cmdline: "console=ttyS0 wyr.img=\(rig.guestRegistry)/test/hello \(insecure) wyr.arg=stored-arg=1 wyr.efi=write", timeout: 300, efiVars: vars)
        #expect(first.contains("● Stored this config in EFI"), "console:\n\(first.suffix(3000))")
        #expect(Self.marker(first) == "console=ttyS0 stored-arg=1")

        let (second, _) = try rig.boot("efi-use", cmdline: "console=ttyS0 \(insecure)", timeout: 300, efiVars: vars)
        #expect(second.contains("● Using the config stored in EFI: wyr.img=\(rig.guestRegistry)/test/hello:latest wyr.arg=stored-arg=1"), "console:\n\(second.suffix(3000))")
        #expect(Self.marker(second) == "console=ttyS0 stored-arg=1")

        let (third, _) = try rig.boot("efi-clear", cmdline: "console=ttyS0 wyr.efi=clear", timeout: 200, efiVars: vars)
        #expect(third.contains("● Cleared the config stored in EFI"), "console:\n\(third.suffix(3000))")

        let (fourth, _) = try rig.boot("efi-gone", cmdline: "console=ttyS0 \(insecure)", timeout: 100, efiVars: vars)
        #expect(fourth.contains("No container image to boot"), "console:\n\(fourth.suffix(3000))")
        #expect(Self.marker(fourth) == nil)
    }
}
