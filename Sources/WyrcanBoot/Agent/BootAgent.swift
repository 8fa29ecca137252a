import Dispatch
import WyrcanChain
#if canImport(Glibc)
import Glibc
#endif

/// Wyrcan as the `/init` of its initramfs: cmdline (or the stored EFI config) → network →
/// parameters from the fleet server → pull → convert → kexec (`BootAttempt`). Never returns:
/// success ends in the next kernel, failure in a rescue shell (`wyr.rescue`) or a reboot after a
/// delay, with an explanation on the console either way.
struct BootAgent {
    static let workDirectory = "/run/wyrcan"
    static let noImageHelp = """

        No container image to boot: the kernel cmdline has no wyr.img=IMG (nor wyr.server=URL to
        ask for one) and no config is stored in EFI. Add, for example:

          wyr.img=registry.example.com/os/debian:12      the image to boot
          wyr.arg="quiet log-buf-len=1M"                  parameters for its kernel (repeatable)
          wyr.efi=write                                    store wyr.img/wyr.arg in EFI NVRAM

        See `wyrcan plan --help` for every key.

        """

    struct BootFailure: RetryableError, CustomStringConvertible {
        var description: String
        var retryable = true
        /// The server's Retry-After, which the next attempt waits for instead of its own delay.
        var retryAfter: Double? = nil
        var isTransient: Bool { retryable }
    }

    func run() -> Never {
        let security = Self.prepareSystem()
        let cmdline = (try? FileSystem.readFile("/proc/cmdline")).map { String(decoding: $0, as: UTF8.self) } ?? ""
        var args: WyrcanArgs
        do throws(CmdlineError) { args = try WyrcanArgs(parsing: cmdline) } catch {
            fail("bad kernel cmdline: \(error.description)", rescue: cmdline.contains("wyr.rescue") || cmdline.contains("wyrcan.rescue"))
        }
        let policy: SignaturePolicy
        do throws(FileError) { policy = try SignaturePolicy.load() } catch {
            fail("a key baked into this initramfs cannot be used: \(error.description) (rebuild it with scripts/build-initramfs --trust-key)", rescue: args.rescue)
        }
        Self.clearStoredConfigIfAsked(args)
        if args.image == nil && args.server == nil { args = Self.withStoredConfig(args) }
        guard args.image != nil || args.server != nil else {
            Console.line(Self.noImageHelp)
            if args.rescue { Subprocess.execShell() }
            Self.rebootAfter(seconds: 60)
        }
        var lastError = ""
        do throws(BootFailure) {
            try RetryPolicy.bootAttempts.run(willRetry: { retry in
                // (The last failure is explained once, by fail(), below.)
                Console.detail("attempt \(retry.attempt) of \(retry.attempts) failed: \(retry.error)")
                Console.detail("retrying in \(Int(retry.delay)) s (attempt \(retry.attempt + 1) of \(retry.attempts))")
            }) { (_) throws(BootFailure) in try BootAttempt(args: args, security: security, signatures: policy).run() }
        } catch {
            lastError = error.description
        }
        fail(lastError, rescue: args.rescue)
    }

    /// /proc, /sys, /dev, /run; the console; entropy; drivers; efivarfs; what Secure Boot and
    /// lockdown enforce (shown, and reported with each attempt).
    static func prepareSystem() -> BootSecurity {
        mountBasics()
        Console.attach()
        warmUpEntropy()
        Console.stage("Wyrcan \(WyrcanVersion.string) on Linux \(LinuxSystem.kernelRelease)")
        Console.stage("Loading drivers")
        for problem in ModuleLoader().loadAll() { Console.detail("module \(problem)") }
        mountEFIVariables()
        let security = BootSecurity.current()
        Console.detail(security.summary)
        return security
    }

    static func clearStoredConfigIfAsked(_ args: WyrcanArgs) {
        guard args.efi == .clear else { return }
        do throws(EFIVariableStore.StoreError) {
            try EFIVariableStore().clear()
            Console.stage("Cleared the config stored in EFI")
        } catch { Console.failure(error.description) }
        if args.image == nil && args.server == nil { rebootAfter(seconds: 10) }
    }

    /// The config stored in EFI, with this cmdline's own settings (rescue, report, insecure, …).
    static func withStoredConfig(_ args: WyrcanArgs) -> WyrcanArgs {
        do throws(EFIVariableStore.StoreError) {
            guard let stored = try EFIVariableStore().read(), let text = try? stored.cmdlineText(),
                  var storedArgs = try? WyrcanArgs(parsing: text), storedArgs.image != nil else { return args }
            Console.stage("Using the config stored in EFI: \(text)")
            storedArgs.rescue = args.rescue
            storedArgs.reportURL = args.reportURL
            storedArgs.insecureRegistries += args.insecureRegistries
            storedArgs.platform = args.platform
            storedArgs.depth = args.depth
            storedArgs.verifyKeys = args.verifyKeys
            return storedArgs
        } catch {
            Console.failure(error.description)
            return args
        }
    }

    func fail(_ reason: String, rescue: Bool) -> Never {
        Console.line("")
        Console.failure(reason)
        if rescue { Subprocess.execShell() }
        Console.line("Add wyr.rescue to the cmdline for a shell instead of a reboot.")
        Self.rebootAfter(seconds: 30)
    }

    /// Right after boot the kernel's random pool is not initialized, and the first blocking
    /// getrandom() (OpenSSL seeding for TLS) waits while the kernel gathers entropy (≈ 1 s of CPU
    /// under emulation). Asking from an idle-priority thread lets that happen while the agent
    /// waits for DHCP and the network, without slowing anything else down. (The Swift runtime's
    /// hash seed would block too: /init sets SWIFT_DETERMINISTIC_HASHING before exec'ing the
    /// agent, see scripts/build-initramfs.)
    static func warmUpEntropy() {
        DispatchQueue.global(qos: .background).async { LinuxSystem.waitForEntropy(idle: true) }
    }

    static func rebootAfter(seconds: UInt32) -> Never {
        Console.stage("Rebooting in \(seconds) s")
        sleep(seconds)
        LinuxSystem.restart()
    }

    static func mountBasics() {
        try? LinuxSystem.mount("proc", at: "/proc", type: "proc")
        try? LinuxSystem.mount("sysfs", at: "/sys", type: "sysfs")
        try? LinuxSystem.mount("devtmpfs", at: "/dev", type: "devtmpfs")
        try? LinuxSystem.mount("securityfs", at: "/sys/kernel/security", type: "securityfs")
        // Blobs, staged layers and the next initrd live here: as much RAM as MemAvailable allows
        // (the checks below), not tmpfs's default half.
        try? LinuxSystem.mount("tmpfs", at: "/run", type: "tmpfs", options: "mode=0755,size=90%")
    }

    /// After the drivers: efivarfs may be a module.
    static func mountEFIVariables() {
        if FileSystem.isDirectory("/sys/firmware/efi") {
            try? LinuxSystem.mount("efivarfs", at: "/sys/firmware/efi/efivars", type: "efivarfs")
        }
    }
}
