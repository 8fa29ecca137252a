import Foundation
import Testing

/// The trusted netboot path with no iPXE: Debian's OVMF (q35, its own virtio-net driver, no
/// option ROM) HTTPS-boots the Wyrcan UKI from wyrcan-serve (TLS profile uefi, a test CA handed
/// to the firmware through fw_cfg), Wyrcan asks the server for this machine's parameters over
/// TLS (the CA baked into the UKI), pulls and kexecs.
@Suite(.serialized) struct UEFIBootSystemTests {
    static let mac = "52:54:00:12:34:56"
    static let diskMac = "52:54:00:12:34:58"
    static let secretArg = "token=UEFI-S3CRET-ARG"
    static let ipxeMac = "52:54:00:12:34:57"

    /// One server, one UKI and the firmware's CA lists for every test here.
    final class Rig: @unchecked Sendable {
        let dir: String
        let boot: BootSystemTests.Rig
        let pki: TestPKI
        let server: Background
        let httpsPort: UInt16
        let httpPort: UInt16
        /// The test CA as an EFI signature list, and another CA's (for the refusal).
        let esl: String
        let otherESL: String

        init() throws {
            boot = try BootSystemTests.rig()
            dir = try Sys.tempDir("uefi")
            pki = try TestPKI(name: "pki-uefi")
            httpsPort = Sys.freePort()
            httpPort = Sys.freePort()
            try FileManager.default.createDirectory(atPath: dir + "/assets", withIntermediateDirectories: true)
            for name in ["wyrcan.kernel", "wyrcan.initrd"] {
                try FileManager.default.copyItem(atPath: Sys.root + "/out/" + name, toPath: dir + "/assets/" + name)
            }
            let uki = try Sys.run(Sys.root + "/scripts/build-uki", ["--server", "https://10.0.2.2:\(httpsPort)", "--server-ca", pki.caCert,
                                                                    "--output", dir + "/assets/wyrcan.efi"])
            guard uki.status == 0 else { throw SysError("build-uki: \(uki.stderr)") }
            esl = dir + "/ca.esl"
            otherESL = dir + "/other-ca.esl"
            let other = try TestPKI(name: "pki-uefi-other", caName: "another CA")
            for (cert, out) in [(pki.caCert, esl), (other.caCert, otherESL)] {
                let r = try Sys.run("/usr/bin/env", ["virt-fw-sigdb", "--add-cert", "8be4df61-93ca-11d2-aa0d-00e098032b8c", cert, "-o", out])
                guard r.status == 0 else { throw SysError("virt-fw-sigdb: \(r.stderr)") }
            }
            let registry = boot.guestRegistry
            try """
                releases:
                  uki: {kernel: wyrcan.kernel, initrd: wyrcan.initrd, efi: wyrcan.efi}
                defaults: {release: uki, image: \(registry)/test/hello, insecure: ["\(registry)"]}
                hosts:
                  "\(UEFIBootSystemTests.mac)": {args: ["uefi=1", {arg: "\(UEFIBootSystemTests.secretArg)", secret: true}]}
                  "\(UEFIBootSystemTests.diskMac)": {mode: exit}

                """.write(toFile: dir + "/fleet.yaml", atomically: true, encoding: .utf8)
            server = try Background(Sys.binary("wyrcan-serve"), [
                "--config", dir + "/fleet.yaml", "--assets", dir + "/assets", "--state", dir + "/state.db", "--http", "127.0.0.1:\(httpPort)",
                "--https", "127.0.0.1:\(httpsPort)", "--cert", pki.serverCert, "--key", pki.serverKey, "--tls-profile", "uefi",
            ], log: dir + "/serve.log")
            let port = httpPort
            try Sys.waitFor("wyrcan-serve") { (try? Sys.sh("curl -sf http://127.0.0.1:\(port)/healthz").stdout) == "ok\n" }
        }

        /// A fresh copy of OVMF's variable store (the Secure Boot one: Debian's snakeoil PK, KEK
        /// and db) whose next boot (one-shot) is `uri`.
        func vars(_ name: String, bootURI uri: String, secureBoot: Bool = false) throws -> String {
            let out = "\(dir)/\(name).vars.fd"
            try? FileManager.default.removeItem(atPath: out)
            let template = secureBoot ? "/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd" : "/usr/share/OVMF/OVMF_VARS_4M.fd"
            let r = try Sys.run("/usr/bin/env", ["virt-fw-vars", "-i", template, "-o", out, "--set-boot-uri", uri])
            guard r.status == 0 else { throw SysError("virt-fw-vars: \(r.stderr)") }
            return out
        }

        /// OVMF (q35) with `vars`, the NIC without an option ROM, `esl` as the HTTPS CA list;
        /// with `secureBoot`, OVMF's Secure Boot build (SMM; `vars` from `vars(secureBoot:)`).
        /// `esp` is a disk to boot first. Stops QEMU (by PID) once the console shows any of
        /// `until`, or after `timeout` s.
        func qemu(_ name: String, vars: String, esl: String, mac: String = UEFIBootSystemTests.mac, disk: String? = nil,
                  secureBoot: Bool = false, esp: String? = nil, reboot: Bool = false, until: [String], timeout: Double) throws -> String {
            let console = "\(dir)/\(name).console"
            let code = secureBoot ? "/usr/share/OVMF/OVMF_CODE_4M.snakeoil.fd" : "/usr/share/OVMF/OVMF_CODE_4M.fd"
            let machine = secureBoot ? ["-machine", "q35,smm=on", "-global", "driver=cfi.pflash01,property=secure,value=on"] : ["-machine", "q35"]
            // (-nodefaults: no empty DVD drive among the boot entries.)
            var args = ["-nodefaults"] + machine + ["-accel", "tcg", "-cpu", "max", "-smp", "2", "-m", "2G",
                        "-drive", "if=pflash,format=raw,unit=0,readonly=on,file=\(code)",
                        "-drive", "if=pflash,format=raw,unit=1,file=\(vars)",
                        "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,romfile=,mac=\(mac)",
                        "-fw_cfg", "name=etc/edk2/https/cacerts,file=\(esl)", "-device", "virtio-rng-pci",
                        "-display", "none", "-serial", "file:\(console)", "-monitor", "none"]
            if let disk { args += ["-drive", "file=\(disk),if=virtio,format=raw"] }
            if let esp { args += ["-drive", "if=none,id=esp,format=raw,file=\(esp)", "-device", "virtio-blk-pci,drive=esp,bootindex=0"] }
            if !reboot { args.append("-no-reboot") }
            return try Sys.runUntil("/usr/bin/qemu-system-x86_64", args, console: console, until: until, timeout: timeout)
        }

        /// Adds `yaml` (indented host entries) to the inventory and waits until the server serves `mac`.
        func addHosts(_ yaml: String, mac: String) throws {
            let handle = try #require(FileHandle(forWritingAtPath: dir + "/fleet.yaml"))
            handle.seekToEndOfFile()
            handle.write(Data(yaml.utf8))
            try handle.close()
            kill(server.process.processIdentifier, SIGHUP)
            let port = httpPort
            try Sys.waitFor("the inventory with \(mac)", seconds: 15) {
                (try? Sys.sh("curl -s -o /dev/null -w '%{http_code}' 'http://127.0.0.1:\(port)/cmdline?mac=\(mac)'").stdout) == "200"
            }
        }

        deinit { server.stop() }
    }

    static let shared = SharedRig(build: { try Rig() }, server: { $0.server })
    static func rig() throws -> Rig { try shared.get() }

    /// The whole path: firmware → HTTPS → UKI → /v1/config over TLS → pull → kexec; the image's
    /// /init sees exactly the host's arguments (the secret one too, which never crossed the
    /// network in the clear), and the server saw the boot's reports.
    @Test(.timeLimit(.minutes(10)))
    func firmwareBootsTheUKIOverHTTPSAndWyrcanGetsItsConfigOverTLS() throws {
        let rig = try Self.rig()
        let console = try rig.qemu("https-boot", vars: try rig.vars("https-boot", bootURI: "https://10.0.2.2:\(rig.httpsPort)/boot.efi"),
                                   esl: rig.esl, until: ["WYRCAN-BOOT-MARKER cmdline=", "● Failure:"], timeout: 480)
        #expect(console.contains("Getting this machine's parameters from https://10.0.2.2:\(rig.httpsPort)/v1/config/\(Self.mac)"), "console:\n\(console.suffix(4000))\nserver:\n\(rig.server.output.suffix(2000))")
        #expect(BootSystemTests.marker(console) == "console=ttyS0 uefi=1 \(Self.secretArg)", "console:\n\(console.suffix(4000))")
        // Without Secure Boot: no lockdown, the image's Debian-signed kernel kexecs as before.
        #expect(console.contains("Secure Boot off (setup mode), kernel lockdown none") && console.contains("image lockdown=[none] integrity confidentiality"), "console:\n\(console.suffix(4000))")
        // Wyrcan does not show what the server gave (it may be secret); the next kernel logs its
        // own cmdline, which is the image's business.
        let booting = try #require(console.range(of: "● Booting "), "console:\n\(console.suffix(4000))")
        let wyrcanStage = String(console[..<(console[booting.upperBound...].firstIndex(where: \.isNewline) ?? console.endIndex)])
        #expect(!wyrcanStage.contains(Self.secretArg), "the secret argument was printed:\n\(wyrcanStage.suffix(3000))")
        let hosts = try Sys.sh("curl -s http://127.0.0.1:\(rig.httpPort)/v1/hosts").stdout
        #expect(hosts.contains("\"stage\" : \"kexec\"") && !hosts.contains(Self.secretArg), "\(hosts)")
        let metrics = try Sys.sh("curl -s http://127.0.0.1:\(rig.httpPort)/metrics").stdout
        #expect(metrics.contains("endpoint=\"boot.efi\",status=\"200\"") && metrics.contains("endpoint=\"v1/config\",status=\"200\""), "\(metrics)")
    }

    /// The firmware refuses a server whose certificate does not chain to the CA it was given.
    @Test(.timeLimit(.minutes(5)))
    func firmwareRefusesAServerItsCADoesNotVouchFor() throws {
        let rig = try Self.rig()
        let console = try rig.qemu("wrong-ca", vars: try rig.vars("wrong-ca", bootURI: "https://10.0.2.2:\(rig.httpsPort)/boot.efi"),
                                   esl: rig.otherESL, until: ["Could not retrieve NBP file size", "EFI stub", "Wyrcan "], timeout: 240)
        #expect(console.contains("Could not retrieve NBP file size from HTTP server"), "console:\n\(console.suffix(3000))")
        #expect(!console.contains("EFI stub") && !console.contains("● Wyrcan"), "the UKI was started:\n\(console.suffix(3000))")
    }

    /// `mode: exit`: Wyrcan sets BootNext to the disk's entry and reboots; the disk's own EFI
    /// loader (GRUB, printing a marker) runs.
    @Test(.timeLimit(.minutes(10)))
    func modeExitBootsTheLocalDiskThroughBootNext() throws {
        let rig = try Self.rig()
        let disk = try Self.markerDisk(in: rig.dir)
        let console = try rig.qemu("mode-exit", vars: try rig.vars("mode-exit", bootURI: "https://10.0.2.2:\(rig.httpsPort)/boot.efi"),
                                   esl: rig.esl, mac: Self.diskMac, disk: disk, reboot: true, until: ["WYRCAN-DISK-MARKER", "● Failure:"], timeout: 480)
        #expect(console.contains("● This machine boots from its local disk"), "console:\n\(console.suffix(4000))")
        #expect(console.contains("BootNext = Boot"), "console:\n\(console.suffix(4000))")
        #expect(console.contains("WYRCAN-DISK-MARKER"), "console:\n\(console.suffix(4000))")
    }

    /// A FAT disk whose removable-media loader (EFI/BOOT/BOOTX64.EFI, a standalone GRUB) prints
    /// WYRCAN-DISK-MARKER and powers off.
    static func markerDisk(in dir: String) throws -> String {
        try Sys.succeeded(try Sys.sh("""
            set -e
            cd '\(dir)'
            printf 'echo WYRCAN-DISK-MARKER\\nhalt\\n' > marker.cfg
            grub-mkstandalone -O x86_64-efi -o marker.efi --modules='echo halt' 'boot/grub/grub.cfg=marker.cfg'
            """), "grub-mkstandalone")
        return try Sys.fatDisk(dir + "/marker-disk.img", label: "MARKER", kilobytes: 32768, files: [(dir + "/marker.efi", "EFI/BOOT/BOOTX64.EFI")])
    }

    /// Wyrcan refuses a config server whose key is not the pinned one: one line naming the
    /// server and the reason, no boot (Wyrcan started directly, its cmdline written by hand).
    @Test(.timeLimit(.minutes(5)))
    func wyrcanRefusesAConfigServerWithTheWrongKey() throws {
        let rig = try Self.rig()
        let wrong = "sha256//" + Data(repeating: 1, count: 32).base64EncodedString()
        let server = "https://10.0.2.2:\(rig.httpsPort)"
        let console = try Sys.runUntil("/usr/bin/qemu-system-x86_64", BootSystemTests.Rig.qemuArguments(
            cmdline: "console=ttyS0 wyr.server=\(server) wyr.server_pin=\(wrong)", serial: "file:\(rig.dir)/wrong-pin.console"),
            console: rig.dir + "/wrong-pin.console", until: ["● Rebooting"], timeout: 180)
        #expect(console.contains("● Failure: wyr.server=\(server): the server's public key is not the one in wyr.server_pin; refusing it"), "console:\n\(console.suffix(3000))")
        #expect(!console.contains("retrying in"), "a wrong key is not retried:\n\(console.suffix(3000))")
    }

    /// A host whose inventory entry holds an S3 secret, netbooted by Debian's iPXE ROM (plain
    /// HTTP): every packet of the boot is captured, and the secret is in none of them, while the
    /// volume still comes down (the secret reached Wyrcan over TLS); the plain-HTTP answers for
    /// the host carry none of it either.
    @Test(.timeLimit(.minutes(10)))
    func secretsNeverCrossTheNetworkInTheClear() throws {
        let rig = try Self.rig()
        let s3 = try LocalS3(name: "secrets")
        try "kept in S3\n".write(toFile: rig.dir + "/boot1.txt", atomically: true, encoding: .utf8)
        #expect(try s3.aws("s3 cp \(rig.dir)/boot1.txt s3://bucket/vm/boot1.txt").status == 0)
        try rig.boot.registry.push(layout: try VolumeBootSystemTests.buildImage(in: rig.dir), tag: "latest", to: "test/secret-volume")
        try rig.addHosts("""
              "\(Self.ipxeMac)":
                image: \(rig.boot.guestRegistry)/test/secret-volume
                kernel_args: [console=ttyS0]
                s3: ["store,http://10.0.2.2:\(s3.port),\(LocalS3.accessKey),\(LocalS3.secretKey)"]
                volumes: ["notes,mirror=store/bucket/vm,pull_on=boot"]
                args: [console=ttyS0]

            """, mac: Self.ipxeMac)
        let capture = rig.dir + "/ipxe-boot.pcap"
        let console = try Sys.runUntil("/usr/bin/qemu-system-x86_64", [
            "-accel", "tcg", "-m", "2G", "-display", "none", "-serial", "file:\(rig.dir)/ipxe-secret.console", "-monitor", "none", "-no-reboot",
            "-netdev", "user,id=n0,bootfile=http://10.0.2.2:\(rig.httpPort)/boot.ipxe", "-device", "virtio-net-pci,netdev=n0,mac=\(Self.ipxeMac)",
            "-object", "filter-dump,id=capture,netdev=n0,file=\(capture)", "-boot", "n",
        ], console: rig.dir + "/ipxe-secret.console", until: ["VOLUME-FOUND", "VOLUME-WROTE", "● Failure:"], timeout: 420)
        #expect(console.contains("wyr.server=https://10.0.2.2:\(rig.httpsPort)"), "the script sent Wyrcan to the HTTPS listener:\n\(console.suffix(3000))")
        #expect(console.contains("VOLUME-FOUND: kept in S3"), "console:\n\(console.suffix(4000))\nserver:\n\(rig.server.output.suffix(2000))")
        let packets = try Data(contentsOf: URL(fileURLWithPath: capture))
        #expect(packets.count > 1_000_000, "the capture holds the boot (\(packets.count) bytes)")
        // (The plain-HTTP script is in it: what crossed in the clear was captured.)
        #expect(packets.range(of: Data("wyr.server_pin=sha256//".utf8)) != nil)
        #expect(packets.range(of: Data(LocalS3.secretKey.utf8)) == nil, "the S3 secret key crossed the network in the clear")
        #expect(packets.range(of: Data("wyr.s3=".utf8)) == nil)
        for path in ["/cmdline?mac=\(Self.ipxeMac)", "/ipxe?mac=\(Self.ipxeMac)", "/v1/boot/\(Self.ipxeMac)", "/v1/config/\(Self.ipxeMac)", "/v1/hosts", "/metrics"] {
            let body = try Sys.sh("curl -s 'http://127.0.0.1:\(rig.httpPort)\(path)'").stdout
            #expect(!body.contains(LocalS3.secretKey), "\(path) shows the secret over plain HTTP")
        }
    }
}
