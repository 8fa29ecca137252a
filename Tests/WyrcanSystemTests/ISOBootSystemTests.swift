import Foundation
import Testing

/// The EFI ISO (`scripts/build-iso`) under QEMU (TCG) + OVMF with a writable vars file: GRUB's
/// default entry boots Wyrcan's kernel + initrd from the ISO. Test copies of the ISO get a preset
/// cmdline with `--cmdline` (build-iso only packs the existing out/ files, no swift build); the
/// plain `out/wyrcan.iso` is built by scripts/test before `swift test`.
///
/// This suite has its own registry and test image rather than `BootSystemTests.rig()`: suites run
/// in parallel, and two suites creating that shared rig at once would share (and wipe) its
/// directory.
@Suite(.serialized) struct ISOBootSystemTests {
    static let plainISO = Sys.root + "/out/wyrcan.iso"

    /// Fails clearly when the ISO was not built, or was built before the current initrd.
    static func checkPlainISO() throws {
        let fm = FileManager.default
        guard fm.fileExists(atPath: plainISO) else {
            throw SysError("out/wyrcan.iso is missing: run scripts/build-iso first (make test does)")
        }
        let isoDate = try fm.attributesOfItem(atPath: plainISO)[.modificationDate] as? Date
        let initrdDate = try fm.attributesOfItem(atPath: Sys.root + "/out/wyrcan.initrd")[.modificationDate] as? Date
        if let isoDate, let initrdDate, isoDate < initrdDate {
            throw SysError("out/wyrcan.iso is older than out/wyrcan.initrd: run scripts/build-iso again (make test does)")
        }
    }

    /// A copy of the ISO whose default GRUB entry adds `cmdline`.
    static func isoCopy(_ dir: String, _ name: String, cmdline: String) throws -> String {
        let path = "\(dir)/\(name).iso"
        let r = try Sys.run(Sys.root + "/scripts/build-iso", ["--output", path, "--cmdline", cmdline])
        guard r.status == 0 else { throw SysError("build-iso --cmdline '\(cmdline)' failed: \(r.stderr)") }
        return path
    }

    /// Boots `iso` as a CD with OVMF and the writable `vars`; returns the serial console text and
    /// the seconds it took. The console holds GRUB's CP437 box drawing: decoded leniently.
    /// With `until`, QEMU is stopped (by PID) as soon as that text is on the console, rather than
    /// waiting for the guest's own reboot delay.
    static func boot(_ dir: String, _ name: String, iso: String, vars: String, timeout: Int, until: String? = nil) throws -> (String, Double) {
        let log = "\(dir)/\(name).console"
        let start = Date()
        let qemu = try Background("/usr/bin/qemu-system-x86_64", ["-accel", "tcg", "-m", "2G", "-display", "none",
            "-serial", "file:\(log)", "-monitor", "none", "-no-reboot",
            "-drive", "if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE.fd",
            "-drive", "if=pflash,format=raw,file=\(vars)",
            "-cdrom", iso,
            "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56"], log: log + ".qemu")
        func console() -> String { String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self) }
        while qemu.process.isRunning && Date().timeIntervalSince(start) < Double(timeout) {
            if let until, console().contains(until) {
                usleep(500_000)   // the rest of the line
                break
            }
            usleep(250_000)
        }
        qemu.stop()
        return (console(), Date().timeIntervalSince(start))
    }

    /// Without network or a registry: the image is EFI-bootable as a CD (El Torito UEFI entry) and
    /// as a disk (GPT with an EFI system partition), and build-iso refuses a cmdline GRUB would alter.
    @Test(.timeLimit(.minutes(10)))  // a hang guard: QEMU boots in other suites share the 2 cores
    func isoIsAHybridEFIImage() throws {
        try Self.checkPlainISO()
        let report = try Sys.run("/usr/bin/xorriso", ["-indev", Self.plainISO, "-report_el_torito", "plain", "-report_system_area", "plain"])
        #expect(report.status == 0, "\(report.stderr)")
        let bootImages = report.stdout.split(whereSeparator: \.isNewline).filter { $0.hasPrefix("El Torito boot img") }
        #expect(bootImages.count == 1, "\(report.stdout)")
        #expect(bootImages.first?.contains("UEFI") == true, "\(report.stdout)")
        #expect(report.stdout.contains("GPT"), "\(report.stdout)")
        // The EFI system partition type C12A7328-F81F-11D2-BA4B-00A0C93EC93B as xorriso prints it.
        #expect(report.stdout.contains("28732ac11ff8d211ba4b00a0c93ec93b"), "\(report.stdout)")

        let dir = try Sys.tempDir("iso-check")
        let refused = try Sys.run(Sys.root + "/scripts/build-iso", ["--output", dir + "/bad.iso", "--cmdline", "wyr.arg=$x"])
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("GRUB would alter"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/bad.iso"))
    }

    /// The original's ISO flow: boot with wyr.efi=write, boot again from the stored config alone,
    /// clear it, and the plain ISO explains that no image is configured.
    @Test(.timeLimit(.minutes(15)))
    func isoBootStoresAndReusesTheEFIConfig() throws {
        try Self.checkPlainISO()
        let dir = try Sys.tempDir("iso")
        let image = try Sys.run(Sys.root + "/scripts/build-test-image", [dir + "/hello", "WYRCAN-BOOT-MARKER", "console=ttyS0"])
        guard image.status == 0 else { throw SysError("build-test-image: \(image.stderr)") }
        let registry = try LocalRegistry(name: "iso")
        try registry.push(layout: dir + "/hello", tag: "latest", to: "test/hello")
        let guest = "10.0.2.2:\(registry.port)"
        let vars = dir + "/OVMF_VARS.fd"
        try FileManager.default.copyItem(atPath: "/usr/share/OVMF/OVMF_VARS.fd", toPath: vars)
        let stored = #"● Using the config stored in EFI: wyr.img=\#(guest)/test/hello:latest wyr.arg=stored-arg=1 wyr.arg="quiet log-buf-len=1M" wyr.insecure=\#(guest)"#

        // 1. What a user types after `e`: the image, the lab registry over HTTP, args, write.
        let writeISO = try Self.isoCopy(dir, "write", cmdline: #"wyr.img=\#(guest)/test/hello wyr.insecure=\#(guest) wyr.arg=stored-arg=1 wyr.arg="quiet log-buf-len=1M" wyr.efi=write"#)
        let (first, s1) = try Self.boot(dir, "iso-write", iso: writeISO, vars: vars, timeout: 300)
        #expect(first.contains("GNU GRUB"), "console:\n\(first.suffix(3000))")
        #expect(first.contains("Command line: BOOT_IMAGE=/wyrcan/wyrcan.kernel console=tty0 console=ttyS0 wyr.img=\(guest)/test/hello"))
        #expect(first.contains("● Stored this config in EFI"), "console:\n\(first.suffix(3000))")
        // GRUB re-quotes the spaced wyr.arg; it must still arrive as one argument with its spaces.
        #expect(BootSystemTests.marker(first) == "console=ttyS0 stored-arg=1 quiet log-buf-len=1M", "console:\n\(first.suffix(3000))")
        print("ISO boot with wyr.efi=write: \(Int(s1)) s from QEMU start to the test image's marker (OVMF, TCG)")

        // 2. The same ISO, untouched (no wyr.img): the stored config boots the image; it holds
        //    wyr.insecure too, so the plain-HTTP lab registry is reached.
        let (second, s2) = try Self.boot(dir, "iso-use", iso: Self.plainISO, vars: vars, timeout: 300)
        #expect(second.contains(stored), "console:\n\(second.suffix(3000))")
        #expect(BootSystemTests.marker(second) == "console=ttyS0 stored-arg=1 quiet log-buf-len=1M", "console:\n\(second.suffix(3000))")
        print("ISO boot from the stored EFI config: \(Int(s2)) s")

        // 4. Clear, then the plain ISO has nothing to boot and says what to add.
        let clearISO = try Self.isoCopy(dir, "clear", cmdline: "wyr.efi=clear")
        let (third, _) = try Self.boot(dir, "iso-clear", iso: clearISO, vars: vars, timeout: 200, until: "Rebooting in")
        #expect(third.contains("● Cleared the config stored in EFI"), "console:\n\(third.suffix(3000))")

        let (fourth, s4) = try Self.boot(dir, "iso-gone", iso: Self.plainISO, vars: vars, timeout: 200, until: "Rebooting in")
        #expect(fourth.contains("No container image to boot"), "console:\n\(fourth.suffix(3000))")
        #expect(fourth.contains("wyr.img=registry.example.com/os/debian:12"))
        #expect(!fourth.contains("● Using the config stored in EFI"))
        #expect(BootSystemTests.marker(fourth) == nil)
        print("plain ISO without a stored config: the help after \(Int(s4)) s")
        registry.server.stop()
    }
}
