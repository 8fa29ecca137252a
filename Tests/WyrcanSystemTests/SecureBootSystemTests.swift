import Foundation
import Testing

/// Secure Boot end to end with Debian's OVMF Secure Boot build and its snakeoil keys (PK, KEK and
/// db hold PkKek-1-snakeoil): the firmware runs only a UKI signed with the db key, the kernel locks
/// itself down, and Wyrcan kexecs only an image kernel signed with a key the kernel trusts.
/// Shares the UEFI suite's wyrcan-serve (HTTPS, TLS profile uefi) and registry.
@Suite(.serialized) struct SecureBootSystemTests {
    static let httpsMac = "52:54:00:12:34:59"
    static let espMac = "52:54:00:12:34:5a"
    static let dbCert = "/usr/share/ovmf/PkKek-1-snakeoil.pem"

    final class Rig: @unchecked Sendable {
        let uefi: UEFIBootSystemTests.Rig
        let dir: String
        /// The snakeoil db key, decrypted (it ships with the passphrase "snakeoil").
        let dbKey: String
        /// FAT ESPs whose removable-media loader is the UKI: signed, unsigned, signed then changed.
        let signedESP: String
        let unsignedESP: String
        let tamperedESP: String
        /// systemd-boot (signed) starting the signed UKI with a cmdline of its own.
        let loaderESP: String
        static let outsideCmdline = "console=ttyS0 wyrcan-outside-cmdline"

        init() throws {
            uefi = try UEFIBootSystemTests.rig()
            dir = try Sys.tempDir("secure-boot")
            dbKey = dir + "/db.key"
            try Sys.succeeded(try Sys.run("/usr/bin/openssl", ["pkey", "-in", "/usr/share/ovmf/PkKek-1-snakeoil.key", "-passin", "pass:snakeoil", "-out", dbKey]), "openssl pkey")
            let registry = uefi.boot.guestRegistry
            // The image whose kernel is re-signed with the db key (test/hello keeps Debian's signature).
            var env = ProcessInfo.processInfo.environment
            env["SIGN_KEY"] = dbKey
            env["SIGN_CERT"] = SecureBootSystemTests.dbCert
            try Sys.succeeded(try Sys.run(Sys.root + "/scripts/build-test-image", [dir + "/signed-hello", "WYRCAN-BOOT-MARKER", "console=ttyS0"], environment: env), "build-test-image")
            try uefi.boot.registry.push(layout: dir + "/signed-hello", tag: "latest", to: "test/signed-hello")
            // Over HTTPS: build-uki signs it; the inventory gives this MAC the signed image.
            try Sys.succeeded(try Sys.run(Sys.root + "/scripts/build-uki", [
                "--server", "https://10.0.2.2:\(uefi.httpsPort)", "--server-ca", uefi.pki.caCert,
                "--sign-key", dbKey, "--sign-cert", SecureBootSystemTests.dbCert, "--output", uefi.dir + "/assets/wyrcan-signed.efi",
            ]), "build-uki --sign-key")
            try uefi.addHosts("""
                  "\(SecureBootSystemTests.httpsMac)": {image: \(registry)/test/signed-hello, args: [secure=1]}
                  "\(SecureBootSystemTests.espMac)": {image: \(registry)/test/hello}

                """, mac: SecureBootSystemTests.espMac)
            // From a disk: the Debian-signed image, reports to the server (a boot's token, baked
            // in), a rescue shell after the failure.
            let report = try ServeSystemTests.reportURL(port: uefi.httpPort, mac: SecureBootSystemTests.espMac)
            let unsigned = dir + "/esp.efi"
            try Sys.succeeded(try Sys.run(Sys.root + "/scripts/build-uki", [
                "--cmdline", "console=ttyS0 wyr.img=\(registry)/test/hello wyr.insecure=\(registry) wyr.report=\(report) wyr.rescue", "--output", unsigned,
            ]), "build-uki")
            try Sys.succeeded(try Sys.run("/usr/bin/sbsign", ["--key", dbKey, "--cert", SecureBootSystemTests.dbCert, "--output", dir + "/esp-signed.efi", unsigned]), "sbsign")
            var tampered = try Data(contentsOf: URL(fileURLWithPath: dir + "/esp-signed.efi"))
            tampered[tampered.count / 2] ^= 0xFF
            try tampered.write(to: URL(fileURLWithPath: dir + "/esp-tampered.efi"))
            signedESP = try Self.esp(dir + "/esp-signed.efi")
            unsignedESP = try Self.esp(unsigned)
            tamperedESP = try Self.esp(dir + "/esp-tampered.efi")
            loaderESP = try Self.loaderESP(in: dir, uki: dir + "/esp-signed.efi", key: dbKey)
        }

        /// A FAT disk with `efi` as EFI/BOOT/BOOTX64.EFI.
        static func esp(_ efi: String) throws -> String {
            try Sys.fatDisk(efi + ".img", label: "ESP", files: [(efi, "EFI/BOOT/BOOTX64.EFI")])
        }

        /// A FAT disk whose loader is systemd-boot, signed with the db key, with one entry: the
        /// UKI as EFI/wyrcan.efi, started with `outsideCmdline` as its options.
        static func loaderESP(in dir: String, uki: String, key: String) throws -> String {
            try Sys.succeeded(try Sys.run("/usr/bin/sbsign", ["--key", key, "--cert", SecureBootSystemTests.dbCert, "--output", dir + "/sd-boot.efi",
                                                              "/usr/lib/systemd/boot/efi/systemd-bootx64.efi"]), "sbsign systemd-boot")
            try "timeout 0\ndefault wyrcan.conf\n".write(toFile: dir + "/loader.conf", atomically: true, encoding: .utf8)
            try "title Wyrcan\nefi /EFI/wyrcan.efi\noptions \(outsideCmdline)\n".write(toFile: dir + "/wyrcan.conf", atomically: true, encoding: .utf8)
            return try Sys.fatDisk(dir + "/loader-esp.img", label: "ESP", files: [
                (dir + "/sd-boot.efi", "EFI/BOOT/BOOTX64.EFI"), (uki, "EFI/wyrcan.efi"),
                (dir + "/loader.conf", "loader/loader.conf"), (dir + "/wyrcan.conf", "loader/entries/wyrcan.conf"),
            ])
        }

        /// A fresh copy of a variable store with no boot entries (the disk's loader runs): the
        /// snakeoil one, or with `secureBoot: false` the plain one.
        func secureVars(_ name: String, secureBoot: Bool = true) throws -> String {
            let out = "\(dir)/\(name).vars.fd"
            try? FileManager.default.removeItem(atPath: out)
            try FileManager.default.copyItem(atPath: secureBoot ? "/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd" : "/usr/share/OVMF/OVMF_VARS_4M.fd", toPath: out)
            return out
        }
    }

    static let shared = SharedRig(build: { try Rig() }, server: { $0.uefi.server })
    static func rig() throws -> Rig { try shared.get() }

    /// Firmware (Secure Boot) → the signed UKI over HTTPS → Wyrcan, locked down, with its drivers
    /// (signed modules) → config over TLS → the image whose kernel carries a db signature → kexec;
    /// the image's /init still runs locked down.
    @Test(.timeLimit(.minutes(12)))
    func aSignedUKIBootsOverHTTPSAndKexecsADbSignedKernel() throws {
        let rig = try Self.rig()
        let uefi = rig.uefi
        let vars = try uefi.vars("sb-https", bootURI: "https://10.0.2.2:\(uefi.httpsPort)/assets/wyrcan-signed.efi", secureBoot: true)
        let console = try uefi.qemu("sb-https", vars: vars, esl: uefi.esl, mac: Self.httpsMac, secureBoot: true,
                                    until: ["WYRCAN-BOOT-MARKER cmdline=", "● Failure:", "Access Denied"], timeout: 600)
        #expect(console.contains("Kernel is locked down from EFI Secure Boot"), "console:\n\(console.suffix(5000))")
        #expect(console.contains("Secure Boot on, kernel lockdown integrity"), "console:\n\(console.suffix(5000))")
        // Its drivers loaded under lockdown (virtio_net is a module: the link came up).
        #expect(console.contains("DHCP on eth0") && !console.contains("\n  module "), "console:\n\(console.suffix(5000))")
        #expect(!console.contains("module verification failed") && !console.contains("Loading of unsigned module"), "console:\n\(console.suffix(5000))")
        #expect(BootSystemTests.marker(console) == "console=ttyS0 secure=1", "console:\n\(console.suffix(5000))")
        #expect(console.contains("image lockdown=none [integrity] confidentiality"), "the kexec'd kernel is not locked down:\n\(console.suffix(3000))")
        let hosts = try Sys.sh("curl -s http://127.0.0.1:\(uefi.httpPort)/v1/hosts").stdout
        #expect(hosts.contains(#""security" : "Secure Boot on, kernel lockdown integrity""#), "\(hosts)")
    }

    /// The same firmware and a signed UKI from disk, but the image's kernel carries only Debian's
    /// signature: no kexec; one line names the cause and the fix, the server gets it as the
    /// failure report, and wyr.rescue opens the shell (no retries: it would fail the same way).
    @Test(.timeLimit(.minutes(12)))
    func aDebianSignedImageKernelIsRefusedWithTheCauseAndTheFix() throws {
        let rig = try Self.rig()
        let console = try rig.uefi.qemu("sb-refused", vars: try rig.secureVars("sb-refused"), esl: rig.uefi.esl, mac: Self.espMac,
                                        secureBoot: true, esp: rig.signedESP, until: ["Rescue shell:", "WYRCAN-BOOT-MARKER", "Access Denied"], timeout: 600)
        let failure = console.split(whereSeparator: \.isNewline).first { $0.contains("● Failure:") }.map(String.init) ?? ""
        #expect(failure.contains("kexec_file_load: Required key not available: the image's kernel is signed, but not by a key this kernel trusts"), "console:\n\(console.suffix(5000))")
        #expect(failure.contains("(Secure Boot on, kernel lockdown integrity)") && failure.contains("--sign-key/--sign-cert"), "\(failure)")
        #expect(console.contains("Rescue shell:") && !console.contains("retrying in"), "console:\n\(console.suffix(3000))")
        let hosts = try Sys.sh("curl -s http://127.0.0.1:\(rig.uefi.httpPort)/v1/hosts").stdout
        #expect(hosts.contains("Required key not available"), "\(hosts)")
    }

    /// Under Secure Boot the UKI's signed cmdline is the kernel's, whatever the loader passes;
    /// without it, a loader's options replace it (which is why a site that relies on the
    /// built-in cmdline, e.g. for wyr.server, turns Secure Boot on).
    @Test(.timeLimit(.minutes(6)))
    func theStubIgnoresACmdlineFromOutsideUnderSecureBoot() throws {
        let rig = try Self.rig()
        for secureBoot in [true, false] {
            let name = secureBoot ? "sb-loader" : "loader"
            let console = try rig.uefi.qemu(name, vars: try rig.secureVars(name, secureBoot: secureBoot), esl: rig.uefi.esl, mac: Self.espMac,
                                            secureBoot: secureBoot, esp: rig.loaderESP, until: ["secureboot: ", "Access Denied"], timeout: 240)
            let kernelCmdline = console.split(whereSeparator: \.isNewline).first { $0.contains("] Command line: ") }.map(String.init) ?? ""
            if secureBoot {
                #expect(kernelCmdline.contains("Command line: console=tty0 console=ttyS0,115200 console=ttyS0 wyr.img=")
                        && !kernelCmdline.contains("wyrcan-outside-cmdline"), "\(name):\n\(console.suffix(3000))")
            } else {
                #expect(kernelCmdline.hasSuffix("Command line: \(Rig.outsideCmdline)"), "\(name):\n\(console.suffix(3000))")
            }
        }
    }

    /// The firmware runs neither an unsigned UKI nor a signed one changed after signing.
    @Test(.timeLimit(.minutes(8)))
    func firmwareRefusesAnUnsignedOrChangedUKI() throws {
        let rig = try Self.rig()
        for (name, esp) in [("sb-unsigned", rig.unsignedESP), ("sb-tampered", rig.tamperedESP)] {
            let console = try rig.uefi.qemu(name, vars: try rig.secureVars(name), esl: rig.uefi.esl, mac: Self.espMac, secureBoot: true,
                                            esp: esp, until: ["Access Denied", "EFI stub", "Linux version"], timeout: 240)
            #expect(console.contains("Access Denied"), "\(name):\n\(console.suffix(3000))")
            #expect(!console.contains("EFI stub") && !console.contains("Linux version"), "\(name) was started:\n\(console.suffix(3000))")
        }
    }
}
