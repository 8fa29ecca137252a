import Dispatch
import WyrcanChain
#if canImport(Glibc)
import Glibc
#endif

/// Wyrcan as the `/init` of its initramfs: cmdline (or the stored EFI config) → network → pull →
/// convert → kexec. Never returns: success ends in the next kernel, failure in a rescue shell
/// (`wyr.rescue`) or a reboot after a delay, with an explanation on the console either way.
struct BootAgent {
    static let workDirectory = "/run/wyrcan"
    static let noImageHelp = """

        No container image to boot: the kernel cmdline has no wyr.img=IMG and no config is stored
        in EFI. Add, for example:

          wyr.img=registry.example.com/os/debian:12      the image to boot
          wyr.arg="quiet log-buf-len=1M"                  parameters for its kernel (repeatable)
          wyr.efi=write                                    store wyr.img/wyr.arg in EFI NVRAM

        See `wyrcan plan --help` for every key.

        """

    func run() -> Never {
        Self.mountBasics()
        Console.attach()
        Self.warmUpEntropy()
        Console.stage("Wyrcan \(WyrcanVersion.string) on Linux \(LinuxSystem.kernelRelease)")
        Console.stage("Loading drivers")
        for problem in ModuleLoader().loadAll() { Console.detail("module \(problem)") }
        Self.mountEFIVariables()
        let cmdline = (try? FileSystem.readFile("/proc/cmdline")).map { String(decoding: $0, as: UTF8.self) } ?? ""
        var args: WyrcanArgs
        do throws(CmdlineError) { args = try WyrcanArgs(parsing: cmdline) } catch {
            fail("bad kernel cmdline: \(error.description)", rescue: cmdline.contains("wyr.rescue") || cmdline.contains("wyrcan.rescue"), reporter: Reporter(url: nil))
        }
        let reporter = Reporter(url: args.reportURL)
        let efi = EFIVariableStore()

        if args.efi == .clear {
            do throws(EFIVariableStore.StoreError) {
                try efi.clear()
                Console.stage("Cleared the config stored in EFI")
            } catch { Console.failure(error.description) }
            if args.image == nil { Self.rebootAfter(seconds: 10) }
        }
        if args.image == nil {
            do throws(EFIVariableStore.StoreError) {
                if let stored = try efi.read() {
                    let text = try? stored.cmdlineText()
                    if let text, let storedArgs = try? WyrcanArgs(parsing: text), storedArgs.image != nil {
                        Console.stage("Using the config stored in EFI: \(text)")
                        // Keep this cmdline's own settings (rescue, report, insecure, …).
                        let extras = args
                        args = storedArgs
                        args.rescue = extras.rescue
                        args.reportURL = extras.reportURL
                        args.insecureRegistries += extras.insecureRegistries
                        args.platform = extras.platform
                        args.depth = extras.depth
                    }
                }
            } catch { Console.failure(error.description) }
        }
        guard let image = args.image else {
            Console.line(Self.noImageHelp)
            if args.rescue { Subprocess.execShell() }
            Self.rebootAfter(seconds: 60)
        }

        reporter.send("booting", image: image.description)

        var lastError = ""
        do throws(BootFailure) {
            try RetryPolicy.bootAttempts.run(willRetry: { retry in
                // (The last failure is explained once, by fail(), below.)
                Console.detail("attempt \(retry.attempt) of \(retry.attempts) failed: \(retry.error)")
                Console.detail("retrying in \(Int(retry.delay)) s (attempt \(retry.attempt + 1) of \(retry.attempts))")
            }) { (_) throws(BootFailure) in
                do throws(BootFailure) { try boot(args: args, image: image, reporter: reporter) } catch {
                    reporter.send("failure", detail: error.description, image: image.description)
                    throw error
                }
            }
        } catch {
            lastError = error.description
        }
        fail(lastError, rescue: args.rescue, reporter: reporter)
    }

    struct BootFailure: RetryableError, CustomStringConvertible {
        var description: String
        var retryable = true
        var isTransient: Bool { retryable }
    }

    /// One attempt; returns only by throwing.
    private func boot(args: WyrcanArgs, image: Reference, reporter: Reporter) throws(BootFailure) {
        Console.stage("Bringing up the network")
        let up = NetworkSetup(config: args.network).bringUp()
        guard up > 0 else { throw BootFailure(description: "no network link got an address (check the cable, DHCP, or wyr.net.* settings)") }
        reporter.send("network", image: image.description)
        var args = args
        if let url = args.extraArgsURL { try Self.mergeExtraArgs(from: url, into: &args) }

        Console.stage("Getting \(image)")
        reporter.send("pulling", image: image.description)
        FileSystem.removeTree(Self.workDirectory)
        do throws(FileError) { try FileSystem.createDirectory(Self.workDirectory + "/out") } catch { throw BootFailure(description: error.description) }
        var puller = ImagePuller(options: RegistryOptions(bootArgs: args))
        let plenty = Locked(false)
        let pullDirectory = Self.workDirectory + "/pull"
        puller.beforeFetch = { (resolved) throws(ConversionError) in
            let layers = resolved.manifest.layersSize
            // Blobs, then an initrd of about the same size, then kexec's own copy of it.
            let needed = layers * 3 + (64 << 20)
            if let available = LinuxSystem.memoryAvailable(), available < needed {
                throw .notEnoughMemory(needed: needed, available: available)
            }
            plenty.withLock { $0 = Self.memoryIsPlenty(compressedLayers: layers) }
        }
        // With memory to spare: decompress each layer once, as soon as it is fetched (the puller
        // drops its blob then), and leave the initrd uncompressed.
        puller.afterFetch = { (index, blob) throws(ConversionError) -> String in
            guard plenty.withLock({ $0 }) else { return blob }
            return try InitrdBuilder.stage(layer: blob, index: index, in: pullDirectory)
        }
        let artifacts: BootArtifacts
        do throws(ConversionError) {
            let pulled = try puller.pull(.registry(image), workDirectory: pullDirectory)
            Console.detail("manifest \(pulled.image.manifestDigest)")
            let started = TransferProgress.now()
            let plenty = plenty.withLock { $0 }
            artifacts = try InitrdBuilder(compression: plenty ? .none : .zstd)
                .build(layers: pulled.layers, outputDirectory: Self.workDirectory + "/out")
            FileSystem.removeTree(Self.workDirectory + "/pull")
            Console.detail("converted in \(TransferProgress.tenths(TransferProgress.now() - started)) s: kernel \(TransferProgress.megabytes(artifacts.kernelBytes)), initrd \(TransferProgress.megabytes(artifacts.initrdBytes))\(plenty ? "" : " (zstd)")")
        } catch {
            throw BootFailure(description: error.description, retryable: !error.isPermanent)
        }
        reporter.send("converted", detail: "initrd \(artifacts.initrdBytes) bytes", image: image.description)
        let hooks = VolumeHooks(args: args)
        if hooks.isNeeded { try hooks.apply(toInitrd: artifacts.initrdPath, image: artifacts.imageEntries) }

        let next: String
        do throws(CmdlineError) { next = try args.nextCmdline(imageCmdline: artifacts.cmdline) } catch {
            throw BootFailure(description: error.description, retryable: false)
        }
        if args.efi == .write {
            do {
                try EFIVariableStore().write(try StoredConfig(args: args))
                Console.stage("Stored this config in EFI: later boots without wyr.img use it")
            } catch {
                Console.failure("could not store the config in EFI: \(error)")
            }
        }
        // The initrd as kexec will read it: with the volumes' segment, if any.
        let needed = (FileSystem.size(artifacts.initrdPath) ?? artifacts.initrdBytes) + artifacts.kernelBytes + (32 << 20)
        if let available = LinuxSystem.memoryAvailable(), available < needed {
            throw BootFailure(description: ConversionError.notEnoughMemory(needed: needed, available: available).description, retryable: false)
        }
        let loading = TransferProgress.now()
        do throws(SystemError) {
            try LinuxSystem.kexecLoad(kernel: artifacts.kernelPath, initrd: artifacts.initrdPath, cmdline: next)
            Console.detail("kernel and initrd loaded for kexec in \(TransferProgress.tenths(TransferProgress.now() - loading)) s")
        } catch {
            throw BootFailure(description: error.description, retryable: false)
        }
        Console.stage("Booting \(image) (\(next))")
        reporter.send("kexec", detail: next, image: image.description)
        FileSystem.remove(artifacts.initrdPath)
        FileSystem.remove(artifacts.kernelPath)
        let error = LinuxSystem.rebootIntoKexec()
        throw BootFailure(description: error.description, retryable: false)
    }

    /// Whether memory holds the uncompressed rootfs twice (estimated at 4× the compressed
    /// layers): staged plain-tar layers plus an uncompressed initrd, then the initrd and kexec's
    /// copy. Then the initrd stays uncompressed — it only moves from this RAM to the next
    /// kernel's, and compressing it here costs more time than the next kernel saves unpacking
    /// it — and layers are decompressed once. Otherwise zstd and two reads keep it small.
    /// Asked before the blobs are fetched, so their own room (1×) is counted too.
    static func memoryIsPlenty(compressedLayers compressed: Int64) -> Bool {
        guard let available = LinuxSystem.memoryAvailable() else { return false }
        // /run (a tmpfs) must hold the blobs, the staged tars and the initrd too.
        let room = FileSystem.freeSpace(workDirectory) ?? 0
        return available > compressed * 9 + (256 << 20) && room > compressed * 10 + (64 << 20)
    }

    /// `wyr.extra_args_url`: fetches more parameters (S3 secrets, volumes) after network-up and
    /// merges them; they are never printed, and only wyr.arg values reach the next cmdline.
    static func mergeExtraArgs(from url: String, into args: inout WyrcanArgs) throws(BootFailure) {
        Console.stage("Getting extra parameters from \(url)")
        var options = HTTPOptions()
        options.timeoutSeconds = 30
        let response: HTTPResponse
        do throws(CurlError) { response = try HTTPClient().send(HTTPRequest(url: url, options: options)) } catch {
            throw BootFailure(description: "wyr.extra_args_url: \(error)")
        }
        guard response.status == 200 else { throw BootFailure(description: "wyr.extra_args_url: \(url) answered HTTP \(response.status)") }
        let text = String(decoding: response.body, as: UTF8.self).split(whereSeparator: \.isNewline)
            .filter { !$0.hasPrefix("#") }.joined(separator: " ")
        let extra: WyrcanArgs
        do throws(CmdlineError) { extra = try WyrcanArgs(parsing: text) } catch {
            // The parameter is named, its value (perhaps a secret) is not.
            throw BootFailure(description: "wyr.extra_args_url: a parameter is invalid: \(error.description.split(separator: ":").first ?? "")", retryable: false)
        }
        for alias in extra.s3 {
            args.s3.removeAll { $0.alias == alias.alias }
            args.s3.append(alias)
        }
        for volume in extra.volumes where !args.volumes.contains(where: { $0.name == volume.name }) { args.volumes.append(volume) }
        if let cache = extra.cache { args.cache = cache }
        args.args += extra.args
        do throws(CmdlineError) { try args.checkVolumes() } catch {
            throw BootFailure(description: error.description, retryable: false)
        }
        Console.detail("\(extra.s3.count) S3 alias(es), \(extra.volumes.count) volume(s), \(extra.args.count) wyr.arg(s) merged")
    }

    private func fail(_ reason: String, rescue: Bool, reporter: Reporter) -> Never {
        Console.line("")
        Console.failure(reason)
        if rescue { Subprocess.execShell() }
        Console.line("Add wyr.rescue to the cmdline for a shell instead of a reboot.")
        Self.rebootAfter(seconds: 30)
    }

    /// Right after boot the kernel's random pool is not initialized, and the first blocking
    /// getrandom() (OpenSSL seeding for a TLS registry) waits while the kernel gathers entropy
    /// (≈ 1 s of CPU under emulation). Asking from an idle-priority thread lets that happen while
    /// the agent waits for DHCP and the network, without slowing anything else down. (The Swift runtime's hash seed would block too: /init sets
    /// SWIFT_DETERMINISTIC_HASHING before exec'ing the agent, see scripts/build-initramfs.)
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
