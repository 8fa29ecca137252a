import WyrcanChain
#if canImport(Glibc)
import Glibc
#endif

extension BootAttempt {
    /// Pulls `image` and converts it into the kernel, initrd and cmdline to kexec.
    func pullAndConvert(_ image: Reference) throws(BootAgent.BootFailure) -> BootArtifacts {
        Console.stage("Getting \(image)")
        reporter.send("pulling", image: image.description)
        let work = BootAgent.workDirectory
        FileSystem.removeTree(work)
        do throws(FileError) { try FileSystem.createDirectory(work + "/out") } catch { throw BootAgent.BootFailure(description: error.description) }
        let plenty = Locked(false)
        var puller = Self.puller(args: args, plenty: plenty, stagingIn: work + "/pull")
        do throws(SignatureError) { puller.verifier = try signatures.verifier(names: args.verifyKeys) } catch {
            throw BootAgent.BootFailure(description: error.description, retryable: false)
        }
        do throws(ConversionError) {
            let pulled = try puller.pull(.registry(image), workDirectory: work + "/pull")
            Console.detail("manifest \(pulled.image.manifestDigest)")
            if let key = pulled.signedBy {
                Console.detail("signed by key \(key)")
                verifiedWith = puller.verifier?.keyNames ?? []
            }
            let started = TransferProgress.now()
            let inMemory = plenty.withLock { $0 }
            var builder = InitrdBuilder(compression: inMemory ? .none : .zstd)
            builder.unpackedLimit = InitrdBuilder.unpackedLimitOfThisMachine()
            let artifacts = try builder.build(layers: pulled.layers, outputDirectory: work + "/out")
            FileSystem.removeTree(work + "/pull")
            Console.detail("converted in \(TransferProgress.tenths(TransferProgress.now() - started)) s: kernel \(TransferProgress.megabytes(artifacts.kernelBytes)), initrd \(TransferProgress.megabytes(artifacts.initrdBytes))\(inMemory ? "" : " (zstd)")")
            reporter.send("converted", detail: "initrd \(artifacts.initrdBytes) bytes", image: image.description)
            return artifacts
        } catch {
            throw BootAgent.BootFailure(description: error.description, retryable: !error.isPermanent)
        }
    }

    /// The puller, checking memory before the blobs come. With memory to spare it decompresses
    /// each layer once, as soon as it is fetched (the puller drops its blob then), and the initrd
    /// stays uncompressed (`plenty`).
    static func puller(args: WyrcanArgs, plenty: Locked<Bool>, stagingIn directory: String) -> ImagePuller {
        var puller = ImagePuller(options: RegistryOptions(bootArgs: args))
        puller.beforeFetch = { (resolved) throws(ConversionError) in
            let layers = resolved.manifest.layersSize
            // Blobs, then an initrd of about the same size, then kexec's own copy of it.
            let needed = layers * 3 + (64 << 20)
            let available = LinuxSystem.memoryAvailable()
            if let available, available < needed { throw .notEnoughMemory(needed: needed, available: available) }
            plenty.withLock { $0 = memoryIsPlenty(compressedLayers: layers, available: available) }
        }
        puller.afterFetch = { (index, blob) throws(ConversionError) -> String in
            guard plenty.withLock({ $0 }) else { return blob }
            return try InitrdBuilder.stage(layer: blob, index: index, in: directory)
        }
        return puller
    }

    /// Whether memory holds the uncompressed rootfs twice (estimated at 4× the compressed
    /// layers): staged plain-tar layers plus an uncompressed initrd, then the initrd and kexec's
    /// copy. Then the initrd stays uncompressed — it only moves from this RAM to the next
    /// kernel's, and compressing it here costs more time than the next kernel saves unpacking
    /// it — and layers are decompressed once. Otherwise zstd and two reads keep it small.
    /// Asked before the blobs are fetched, so their own room (1×) is counted too.
    static func memoryIsPlenty(compressedLayers compressed: Int64, available: Int64?) -> Bool {
        guard let available else { return false }
        // /run (a tmpfs) must hold the blobs, the staged tars and the initrd too.
        let room = FileSystem.freeSpace(BootAgent.workDirectory) ?? 0
        return available > compressed * 9 + (256 << 20) && room > compressed * 10 + (64 << 20)
    }

    /// Volumes into the initrd, the next cmdline, EFI persistence, then kexec.
    func kexec(into image: Reference, _ artifacts: BootArtifacts) throws(BootAgent.BootFailure) {
        let next: String
        do throws(CmdlineError) { next = try args.nextCmdline(imageCmdline: artifacts.cmdline, verifiedWith: verifiedWith) } catch {
            throw BootAgent.BootFailure(description: error.description, retryable: false)
        }
        var hooks = VolumeHooks(args: args)
        // The booted system reports `up`; a Wyrcan stage booting next reports for itself.
        if let url = reporter.url, (try? WyrcanArgs(parsing: next))?.image == nil {
            hooks.upReport = UpReport(url: url, pin: reporter.options.pinnedPublicKey, caFile: reporter.options.caFile)
        }
        if hooks.isNeeded { try hooks.apply(toInitrd: artifacts.initrdPath, image: artifacts.imageEntries) }
        if args.efi == .write { storeConfig() }
        // The initrd as kexec will read it: with the volumes' segment, if any.
        let needed = (FileSystem.size(artifacts.initrdPath) ?? artifacts.initrdBytes) + artifacts.kernelBytes + (32 << 20)
        if let available = LinuxSystem.memoryAvailable(), available < needed {
            throw BootAgent.BootFailure(description: ConversionError.notEnoughMemory(needed: needed, available: available).description, retryable: false)
        }
        let loading = TransferProgress.now()
        do throws(SystemError) {
            try LinuxSystem.kexecLoad(kernel: artifacts.kernelPath, initrd: artifacts.initrdPath, cmdline: next)
            Console.detail("kernel and initrd loaded for kexec in \(TransferProgress.tenths(TransferProgress.now() - loading)) s")
        } catch {
            let refusal = security.kexecRefusal(code: error.code).map { ": " + $0 } ?? ""
            throw BootAgent.BootFailure(description: error.description + refusal, retryable: false)
        }
        // Parameters from wyr.server may be secrets (the inventory's `secret: true`), also when an
        // earlier stage of a chain fetched them for this one: they are not shown, nor reported.
        let fromServer = args.server != nil
        let shown = fromServer || args.depth > 0 ? "the image's \(Message.quoted(artifacts.cmdline)) + \(args.args.count) wyr.arg(s)\(fromServer ? " from wyr.server" : ""), not shown" : next
        Console.stage("Booting \(image) (\(shown))")
        reporter.send("kexec", detail: shown, image: image.description)
        FileSystem.remove(artifacts.initrdPath)
        FileSystem.remove(artifacts.kernelPath)
        let error = LinuxSystem.rebootIntoKexec()
        throw BootAgent.BootFailure(description: error.description, retryable: false)
    }

    private func storeConfig() {
        do {
            try EFIVariableStore().write(try StoredConfig(args: args))
            Console.stage("Stored this config in EFI: later boots without wyr.img use it")
        } catch {
            Console.failure("could not store the config in EFI: \(error)")
        }
    }
}
