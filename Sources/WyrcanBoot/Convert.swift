import ArgumentParser
import Dispatch
import WyrcanChain
#if canImport(Glibc)
import Glibc
#endif

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pull an image and turn it into kernel + initrd + cmdline.",
        discussion: """
            Writes DIR/kernel (the image's /boot/wyrcan.kernel), DIR/initrd (the whole merged \
            rootfs as a cpio newc archive, zstd by default) and DIR/cmdline (the image's \
            /boot/wyrcan.cmdline), then prints the resolved manifest digest on stdout. Every \
            manifest and blob is checked against its digest; on any error nothing is written \
            (existing files in DIR are left as they were).

            REF is a registry reference ([REGISTRY[:PORT]/]PATH[:TAG][@sha256:DIGEST]), \
            oci:DIR[:TAG] (an OCI image layout, e.g. from umoci or skopeo) or oci-archive:FILE[:TAG].

            EXAMPLES
              wyrcan convert 127.0.0.1:5000/test/hello --insecure-registry 127.0.0.1:5000 --output out/
              wyrcan convert oci:./layout:latest --compression gzip --output out/
              wyrcan convert registry.example.com/os/debian:12 --auth-file ~/.docker/config.json --output out/
            """)

    @Argument(help: "The image: a registry reference, oci:DIR[:TAG] or oci-archive:FILE[:TAG].")
    var image: String

    @Option(name: .shortAndLong, help: ArgumentHelp("Directory for kernel, initrd and cmdline (created if missing).", valueName: "DIR"))
    var output: String

    @Option(help: "Initrd compression: zstd, gzip or none.")
    var compression: String = "zstd"

    @Option(name: .customLong("level"), help: ArgumentHelp("Compression level: zstd 1–19 (default 3), gzip 1–9 (default 6).", valueName: "N"))
    var level: Int?

    @Option(name: .customLong("threads"), help: ArgumentHelp("Compression threads (default: one per CPU, fastest): the initrd is then independent frames of whole cpio members, ≈ 5 % larger; 1 writes one frame on one thread beside the reader, with the least memory.", valueName: "N"))
    var threads: Int?

    @OptionGroup var registry: RegistryArguments

    @Option(name: .customLong("verify-key"), help: ArgumentHelp("Convert only if the image is signed (sigstore/cosign signature in the registry) by this public key (repeatable: any one of them).", valueName: "FILE"))
    var verifyKeys: [String] = []

    @Option(name: .customLong("max-unpacked"), help: ArgumentHelp("Refuse an image whose initrd unpacks to more than this (the booted machine holds it in RAM): bytes, or with K, M, G, T (default: this machine's RAM).", valueName: "SIZE"))
    var maxUnpacked: String?

    @Flag(help: "No progress output.")
    var quiet = false

    func run() throws {
        do {
            let digest = try convert()
            print(digest)
        } catch let error as ValidationError {
            throw error
        } catch {
            if !quiet { TransferProgress.clearLine() }
            printError("wyrcan: error: \(error)")
            throw ExitCode(1)
        }
    }

    /// Ctrl-C or SIGTERM mid-conversion: the work directory (blobs, staged layers, the partial
    /// outputs) is removed, as on an error, and DIR keeps what it had; exit 130 or 143. The two
    /// signals are blocked here, before any other thread starts (all inherit that), and one
    /// thread waits for them.
    static func removeOnInterrupt(_ work: String) {
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &signals, nil)
        DispatchQueue(label: "wyrcan.convert.signals").async { [signals] in
            var signals = signals
            var number: Int32 = 0
            guard sigwait(&signals, &number) == 0 else { return }
            FileSystem.removeTree(work)
            TransferProgress.clearLine()
            printError("wyrcan: interrupted; nothing written")
            _exit(128 + number)
        }
    }

    /// `--max-unpacked`, or this machine's RAM.
    func unpackedLimit() throws -> (bytes: Int64, source: String)? {
        guard let text = maxUnpacked else {
            return InitrdBuilder.unpackedLimitOfThisMachine(reserve: 0).map { ($0.bytes, $0.source + " (--max-unpacked SIZE for another)") }
        }
        let units: [Character: Int64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        let unit = text.last.flatMap { units[Character($0.uppercased())] }
        guard let number = Int64(unit == nil ? text : String(text.dropLast())), number > 0,
              number <= Int64.max / (unit ?? 1) else {
            throw ValidationError("--max-unpacked \(text): give a size such as 8G, 512M or 1073741824")
        }
        return (number * (unit ?? 1), "given by --max-unpacked")
    }

    func convert() throws -> String {
        guard let compression = CpioWriter.Compression(rawValue: compression) else {
            throw ValidationError("--compression must be zstd, gzip or none")
        }
        if let threads, threads < 1 || threads > 256 { throw ValidationError("--threads must be 1–256") }
        if let level {
            guard compression != .none else { throw ValidationError("--level is not used with --compression none") }
            let range = compression == .gzip ? 1...9 : 1...19
            guard range.contains(level) else {
                throw ValidationError("--level must be \(range.lowerBound)–\(range.upperBound) for --compression \(compression.rawValue)")
            }
        }
        guard !output.isEmpty else { throw ValidationError("--output needs a directory") }
        let limit = try unpackedLimit()
        let location = try ImageLocation(parsing: image)
        let options = try registry.options(for: location)
        let verifier = try RegistryArguments.verifier(keyFiles: verifyKeys, option: "--verify-key")

        try FileSystem.createDirectory(output)
        let work = try FileSystem.temporaryDirectory(in: output, prefix: ".wyrcan-work")
        defer { FileSystem.removeTree(work) }
        Self.removeOnInterrupt(work)
        // Layers are decompressed once into the work directory (temporary space ≈ the
        // uncompressed layers) instead of twice — when the disk has room for them and the blobs
        // (estimated at 10× the compressed layers, plus the initrd's own room) — each as soon as
        // it is fetched, while the others still download.
        let staging = Locked(false)
        var puller = ImagePuller(options: options, quiet: quiet)
        puller.verifier = verifier
        puller.beforeFetch = { [quiet] (image) throws(ConversionError) in
            let compressed = image.manifest.layersSize
            let room = (FileSystem.freeSpace(work) ?? 0) > compressed * 11 + (256 << 20)  // (blobs not fetched yet)
            staging.withLock { $0 = room }
            if !room && !quiet {
                printError("● Little free space in \(output): reading the layers twice instead of staging them decompressed")
            }
        }
        puller.afterFetch = { (index, blob) throws(ConversionError) -> String in
            staging.withLock { $0 } ? try InitrdBuilder.stage(layer: blob, index: index, in: work) : blob
        }
        let pulled = try puller.pull(location, workDirectory: work)
        var builder = InitrdBuilder(compression: compression, compressionLevel: level, compressionThreads: threads ?? LinuxSystem.processorCount)
        builder.unpackedLimit = limit
        let artifacts = try builder.build(layers: pulled.layers, outputDirectory: output, partialDirectory: work)
        if !quiet, let key = pulled.signedBy { printError("● \(pulled.image.name): signed by key \(key)") }
        if !quiet {
            let gzipLayers = pulled.image.manifest.layers.contains { $0.mediaType.hasSuffix("gzip") }
            let inflated = gzipLayers ? ", gzip layers inflated with \(GzipEngine.preferred == .isal ? "ISA-L" : "zlib")" : ""
            printError("● Converted \(pulled.image.name): kernel \(TransferProgress.megabytes(artifacts.kernelBytes)), initrd \(TransferProgress.megabytes(artifacts.initrdBytes)) (\(compression.rawValue))\(inflated), cmdline \"\(artifacts.cmdline)\"")
        }
        return pulled.image.manifestDigest.description
    }
}
