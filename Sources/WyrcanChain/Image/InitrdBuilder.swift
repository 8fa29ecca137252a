#if canImport(Glibc)
import Glibc
#endif

/// What `InitrdBuilder` produced.
public struct BootArtifacts: Sendable {
    public var kernelPath: String
    public var initrdPath: String
    public var cmdlinePath: String
    /// The contents of the image's `/boot/wyrcan.cmdline` (trimmed; empty when absent).
    public var cmdline: String
    public var initrdBytes: Int64
    public var kernelBytes: Int64
    /// The image's directories and symlinks by path (relative, no leading slash): what an
    /// archive appended to this initrd must respect (see `DirectoryArchiver`).
    public var imageEntries: [String: ArchiveEntryInfo] = [:]
}

/// Turns layers (in manifest order: compressed blobs, or plain tars from `stage`) into `kernel`,
/// `initrd` (cpio newc of the whole merged rootfs) and `cmdline` without unpacking to a
/// filesystem:
/// 1. read every layer's headers (layers in parallel) and merge them into a `RootfsTree`;
/// 2. check the boot pieces (`/boot/wyrcan.kernel`, `/init`, `/boot/wyrcan.cmdline`) — before any
///    output is written;
/// 3. write all directories (sorted, so parents come first), then stream each layer once more,
///    copying the data of the members that survived straight into the compressed cpio, hard-link
///    groups as cpio hard links — all but the kernel, which goes to its own file only (as in the
///    original Wyrcan, the initrd is the whole image besides the kernel).
/// Memory holds metadata only. Outputs appear atomically (renamed into place) or not at all.
public struct InitrdBuilder {
    public var compression: CpioWriter.Compression = .zstd
    public var compressionLevel: Int? = nil
    /// Compression threads (see `CpioWriter`): more than 1 writes frames of whole members; 1 keeps
    /// memory lowest.
    public var compressionThreads = 1
    /// The most the initrd may unpack to, and what that is (for the message): the image's whole
    /// tree lives in the booted machine's RAM, so a larger one is refused before anything is
    /// written (a sparse member claiming 4 GiB of zeros costs 672 bytes of layer). Nil: no limit.
    public var unpackedLimit: (bytes: Int64, source: String)? = nil

    public init(compression: CpioWriter.Compression = .zstd, compressionLevel: Int? = nil, compressionThreads: Int = 1) {
        self.compression = compression
        self.compressionLevel = compressionLevel
        self.compressionThreads = compressionThreads
    }

    public static let kernelPath = "boot/wyrcan.kernel"
    public static let initPath = "init"
    public static let cmdlinePath = "boot/wyrcan.cmdline"
    static let maximumCmdlineBytes = 4096

    /// Writes `kernel`, `initrd` and `cmdline` into `outputDirectory`: first as `*.partial` in
    /// `partialDirectory` (by default the output directory; it must be on the same file system),
    /// renamed into place once all three are complete.
    public func build(layers: [String], outputDirectory: String, partialDirectory: String? = nil) throws(ConversionError) -> BootArtifacts {
        let tree = try Self.merge(layers: layers)
        let boot = try Self.bootPieces(tree)
        if let limit = unpackedLimit {
            let bytes = Self.unpackedBytes(tree)
            guard bytes <= limit.bytes else { throw .tooLargeUnpacked(bytes: bytes, limit: limit.bytes, source: limit.source) }
        }

        let kernelOut = "\(outputDirectory)/kernel"
        let initrdOut = "\(outputDirectory)/initrd"
        let cmdlineOut = "\(outputDirectory)/cmdline"
        let partial = ["kernel", "initrd", "cmdline"].map { "\(partialDirectory ?? outputDirectory)/\($0).partial" }
        do throws(ConversionError) {
            let cmdline = try write(tree: tree, layers: layers, boot: boot, kernelTo: partial[0], initrdTo: partial[1])
            do throws(FileError) {
                try FileSystem.writeFile(partial[2], Array((cmdline + "\n").utf8))
                for (from, to) in zip(partial, [kernelOut, initrdOut, cmdlineOut]) { try FileSystem.rename(from, to) }
            } catch { throw ConversionError.file(error) }
            var entries: [String: ArchiveEntryInfo] = [:]
            for node in tree.nodes.values where node.info.type == .directory || node.info.type == .symlink {
                entries[node.info.path] = node.info
            }
            return BootArtifacts(
                kernelPath: kernelOut, initrdPath: initrdOut, cmdlinePath: cmdlineOut, cmdline: cmdline,
                initrdBytes: FileSystem.size(initrdOut) ?? 0, kernelBytes: FileSystem.size(kernelOut) ?? 0,
                imageEntries: entries)
        } catch {
            partial.forEach(FileSystem.remove)
            throw error
        }
    }

    /// Decompresses one layer blob into `directory` as a plain tar (`layer-INDEX.tar`, removed
    /// again if that fails), so that `build`, which reads every layer twice (headers, then data),
    /// decompresses it once; returns the tar's path, or the blob's own when it is not compressed.
    /// Meant for `ImagePuller.afterFetch`: layers decompress while others still download (and the
    /// puller then deletes a downloaded blob).
    public static func stage(layer blob: String, index: Int, in directory: String) throws(ConversionError) -> String {
        guard ArchiveReader.compression(of: blob) != .none else { return blob }
        let tar = "\(directory)/layer-\(index).tar"
        do throws(ArchiveError) { try ArchiveReader.decompress(layer: blob, to: tar) } catch {
            FileSystem.remove(tar)
            throw .archive(error)
        }
        return tar
    }

    /// Step 1: scan layers in parallel, merge in order.
    static func merge(layers: [String]) throws(ConversionError) -> RootfsTree {
        let scanned = try Parallel.map(layers.count, width: LinuxSystem.processorCount) { (i) throws(ConversionError) in
            try LayerEntry.scan(path: layers[i], layer: i)
        }
        var tree = RootfsTree()
        for (i, entries) in scanned.enumerated() { try tree.apply(layer: i, entries: entries) }
        return tree
    }

    /// What the initrd unpacks to: every file's data once per hard-link group, and each entry's
    /// cpio header and name.
    static func unpackedBytes(_ tree: RootfsTree) -> Int64 {
        var bytes: Int64 = 0
        var sources = Set<RootfsTree.Source>()
        for node in tree.nodes.values {
            bytes = bytes.addingSaturating(112 + Int64(node.info.path.utf8.count))
            if node.info.type == .regular, sources.insert(node.source).inserted { bytes = bytes.addingSaturating(node.info.size) }
        }
        return bytes
    }

    /// The limit for an initrd that a machine like this one boots: its RAM, less `reserve`.
    public static func unpackedLimitOfThisMachine(reserve: Int64 = 128 << 20) -> (bytes: Int64, source: String)? {
        LinuxSystem.memoryTotal().map { (max(0, $0 - reserve), "of RAM this machine has") }
    }

    struct BootPieces {
        var kernel: RootfsTree.Source
        /// The kernel file's path (the symlinks resolved).
        var kernelPath: String
        /// `/boot/wyrcan.kernel` itself when it is a symlink to the kernel file.
        var kernelLink: RootfsTree.Source?
        var cmdline: RootfsTree.Source?
    }

    /// Step 2: everything a boot needs, checked before writing.
    static func bootPieces(_ tree: RootfsTree) throws(ConversionError) -> BootPieces {
        guard let (kernelPath, kernel) = try tree.resolve(kernelPath) else { throw .missingKernel }
        guard kernel.info.type == .regular else { throw .kernelNotAFile("/" + kernelPath) }

        guard try tree.lookup(initPath) != nil else { throw .missingInit }
        guard let (initTarget, initNode) = try tree.resolve(initPath), initNode.info.type == .regular else {
            let target = tree.nodes[initPath]?.info.symlinkTarget ?? "/init"
            throw .initNotAFile(target)
        }
        guard initNode.info.permissions & 0o111 != 0 else {
            throw .initNotExecutable(target: "/" + initTarget, mode: initNode.info.permissions)
        }

        var cmdline: RootfsTree.Source? = nil
        // Looked up through the image's symlinks (`/boot` may be one), like the kernel.
        if try tree.lookup(cmdlinePath) != nil {
            guard let (_, node) = try tree.resolve(cmdlinePath), node.info.type == .regular else {
                throw .cmdlineUnreadable("does not resolve to a regular file inside the image")
            }
            guard node.info.size <= maximumCmdlineBytes else {
                throw .cmdlineUnreadable("is \(node.info.size) bytes; the file may hold at most \(maximumCmdlineBytes) (a kernel cmdline holds \(KernelCmdline.maximumLength) after spacing is collapsed)")
            }
            cmdline = node.source
        }
        let link = try tree.lookup(Self.kernelPath).flatMap { $0.1.info.type == .symlink ? $0.1.source : nil }
        return BootPieces(kernel: kernel.source, kernelPath: kernelPath, kernelLink: link, cmdline: cmdline)
    }

    /// Step 3: the cpio, the kernel copy and the cmdline text.
    private func write(
        tree: RootfsTree, layers: [String], boot: BootPieces, kernelTo: String, initrdTo: String
    ) throws(ConversionError) -> String {
        let cmdlineBytes: [UInt8]
        do throws(ArchiveError) {
            let copier = try MemberCopier(
                writer: try CpioWriter(path: initrdTo, compression: compression, level: compressionLevel, threads: compressionThreads),
                kernelTo: kernelTo, boot: boot)
            try copier.writeDirectories(of: tree)
            var needed: [Int: [Int: [RootfsTree.Node]]] = [:]
            for (source, members) in tree.membersBySource { needed[source.layer, default: [:]][source.ordinal] = members }
            for (index, path) in layers.enumerated() {
                guard let wanted = needed[index], !wanted.isEmpty else { continue }
                try copier.copy(layer: path, index: index, wanted: wanted)
            }
            try copier.writer.close()
            cmdlineBytes = copier.cmdlineBytes
        } catch {
            throw .archive(error)
        }
        return try Self.checkedCmdline(cmdlineBytes)
    }

    /// The image's `/boot/wyrcan.cmdline` as the next kernel will read it, or why it cannot be.
    static func checkedCmdline(_ bytes: [UInt8]) throws(ConversionError) -> String {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw .cmdlineUnreadable("is not UTF-8 text")
        }
        // The kernel takes the cmdline up to its first NUL: the rest would be lost.
        if bytes.contains(0) { throw .cmdlineUnreadable("contains a NUL byte, where the kernel would cut it short") }
        let tokens = KernelCmdline.tokenize(text)
        if tokens.contains(where: \.unterminatedQuote) { throw .cmdlineUnreadable("has an unbalanced double quote") }
        if let split = tokens.first(where: { !$0.isValidUTF8 }) {
            throw .cmdlineUnreadable("the kernel would split \(Message.quoted(split.raw)) inside a UTF-8 character (byte 0xA0, part of characters such as 'à'); put that parameter in double quotes")
        }
        return tokens.map(\.raw).joined(separator: " ")
    }
}

/// Step 3 of `InitrdBuilder`: writes the merged tree's members into the cpio in layer order —
/// directories first, then each layer read once more for the data of the members that survived,
/// hard-link groups as cpio hard links — and the kernel into its own file.
private final class MemberCopier {
    let writer: CpioWriter
    let kernelFile: FileHandleFD
    let boot: InitrdBuilder.BootPieces
    /// The last inode number given.
    private var inode: UInt64 = 0
    /// The image's `/boot/wyrcan.cmdline`, as it went by.
    private(set) var cmdlineBytes: [UInt8] = []

    init(writer: CpioWriter, kernelTo path: String, boot: InitrdBuilder.BootPieces) throws(ArchiveError) {
        self.writer = writer
        self.boot = boot
        do throws(FileError) { kernelFile = try FileHandleFD.create(path) } catch {
            throw ArchiveError(operation: "create \(path)", message: error.description)
        }
    }

    private func nextInode() -> UInt64 {
        inode += 1
        return inode
    }

    /// The root first (the kernel, and `cpio -i`, apply its mode and owner to `/`), then every
    /// directory, sorted so that parents come first.
    func writeDirectories(of tree: RootfsTree) throws(ArchiveError) {
        for var directory in [tree.root] + tree.directories.map(\.info) {
            directory.inode = nextInode()
            directory.linkCount = 2
            try writer.writeHeader(directory)
        }
    }

    /// Reads one layer through, copying the members in `wanted` (by ordinal).
    func copy(layer path: String, index: Int, wanted: [Int: [RootfsTree.Node]]) throws(ArchiveError) {
        let reader = try ArchiveReader(layer: path)
        var ordinal = -1
        var remaining = wanted.count
        while remaining > 0, try reader.next() != nil {
            ordinal += 1
            guard let members = wanted[ordinal] else { continue }
            remaining -= 1
            try copy(members: members, source: RootfsTree.Source(layer: index, ordinal: ordinal), from: reader)
        }
        if remaining > 0 {
            throw ArchiveError(operation: "layer \(index + 1)", message: "changed between reads (\(remaining) members missing)")
        }
    }

    /// One tar member: every name it survives under in the tree.
    private func copy(members: [RootfsTree.Node], source: RootfsTree.Source, from reader: ArchiveReader) throws(ArchiveError) {
        var members = members
        // The kernel goes to its own file, not into the initrd ("the entire container image
        // besides the kernel", as the original Wyrcan): the next kernel would only hold a second
        // copy of itself in RAM. Other hard-link names of the same file are the image's own and
        // stay (with the data).
        let isKernel = source == boot.kernel
        if isKernel {
            let size = members[0].info.size
            members.removeAll { $0.info.path == boot.kernelPath }
            if members.isEmpty {
                try copyData(from: reader, layer: source.layer, path: boot.kernelPath, size: size) { chunk throws(ArchiveError) in try self.writeKernel(chunk) }
                return
            }
        }
        if source == boot.kernelLink { return }
        guard members[0].info.type == .regular else {
            for member in members {
                var info = member.info
                info.inode = nextInode()
                try writer.writeHeader(info)
            }
            return
        }
        let inode = nextInode()
        var first = members[0].info
        first.inode = inode
        first.linkCount = UInt32(members.count)
        try writer.writeHeader(first)
        let isCmdline = source == boot.cmdline
        try copyData(from: reader, layer: source.layer, path: first.path, size: first.size) { chunk throws(ArchiveError) in
            try self.writer.write(chunk)
            if isCmdline { self.cmdlineBytes.append(contentsOf: chunk) }
            if isKernel { try self.writeKernel(chunk) }
        }
        for member in members.dropFirst() {
            var info = member.info
            info.inode = inode
            info.linkCount = UInt32(members.count)
            info.size = 0
            try writer.writeHeader(info)
        }
    }

    private func writeKernel(_ chunk: UnsafeRawBufferPointer) throws(ArchiveError) {
        do throws(FileError) { try kernelFile.write(chunk) } catch {
            throw ArchiveError(operation: "write kernel", message: error.description)
        }
    }

    /// The current member's data, all `size` bytes of it, to `sink`.
    private func copyData(
        from reader: ArchiveReader, layer: Int, path: String, size: Int64,
        to sink: (UnsafeRawBufferPointer) throws(ArchiveError) -> Void
    ) throws(ArchiveError) {
        var copied: Int64 = 0
        do {
            try reader.readData { chunk in
                try sink(chunk)
                copied += Int64(chunk.count)
            }
        } catch let e as ArchiveError where e.operation == "write kernel" {
            throw e
        } catch let e as ArchiveError {
            throw ArchiveError(operation: "layer \(layer + 1)", message: "\(Message.quoted(path)): \(e.message)")
        } catch {
            throw ArchiveError(operation: "layer \(layer + 1)", message: "\(error)")
        }
        guard copied == size else {
            throw ArchiveError(operation: "layer \(layer + 1)", message: "\(Message.quoted(path)): \(copied) of \(size) bytes in the layer")
        }
    }
}

extension Int64 {
    /// `self + other`, or `Int64.max` where that would overflow (sizes an image claims must not trap).
    func addingSaturating(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? .max : sum
    }
}
