import Dispatch
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
        final class Slot: @unchecked Sendable { var result: Result<[LayerEntry], ConversionError>? }
        let slots = layers.map { _ in Slot() }
        DispatchQueue.concurrentPerform(iterations: layers.count) { i in
            do throws(ConversionError) { slots[i].result = .success(try LayerEntry.scan(path: layers[i], layer: i)) } catch {
                slots[i].result = .failure(error)
            }
        }
        var tree = RootfsTree()
        for (i, slot) in slots.enumerated() {
            switch slot.result! {
            case .success(let entries): try tree.apply(layer: i, entries: entries)
            case .failure(let error): throw error
            }
        }
        return tree
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

    /// The kernel member's data, into its own file.
    private func copyKernel(from reader: ArchiveReader, to file: FileHandleFD, size: Int64, layer: Int, path: String) throws(ArchiveError) {
        var copied: Int64 = 0
        var failure: FileError? = nil
        do {
            try reader.readData { chunk in
                do throws(FileError) { try file.write(chunk) } catch { failure = error }
                copied += Int64(chunk.count)
            }
        } catch let e as ArchiveError {
            throw ArchiveError(operation: "layer \(layer + 1)", message: "\(path): \(e.message)")
        } catch {
            throw ArchiveError(operation: "layer \(layer + 1)", message: "\(error)")
        }
        if let failure { throw ArchiveError(operation: "write kernel", message: failure.description) }
        guard copied == size else {
            throw ArchiveError(operation: "layer \(layer + 1)", message: "\(path): \(copied) of \(size) bytes in the layer")
        }
    }

    /// Step 3: the cpio, the kernel copy and the cmdline text.
    private func write(
        tree: RootfsTree, layers: [String], boot: BootPieces, kernelTo: String, initrdTo: String
    ) throws(ConversionError) -> String {
        var cmdlineBytes: [UInt8] = []
        do throws(ArchiveError) {
            let writer = try CpioWriter(path: initrdTo, compression: compression, level: compressionLevel, threads: compressionThreads)
            var inode: UInt64 = 1
            // The root first: the kernel (and `cpio -i`) apply its mode and owner to `/`.
            var root = tree.root
            root.inode = inode
            root.linkCount = 2
            try writer.writeHeader(root)
            for var dir in tree.directories.map(\.info) {
                inode += 1
                dir.inode = inode
                dir.linkCount = 2
                try writer.writeHeader(dir)
            }
            let groups = tree.membersBySource
            var needed: [Int: [Int: [RootfsTree.Node]]] = [:]
            for (source, members) in groups { needed[source.layer, default: [:]][source.ordinal] = members }
            let kernelFile: FileHandleFD
            do throws(FileError) { kernelFile = try FileHandleFD.create(kernelTo) } catch {
                throw ArchiveError(operation: "create \(kernelTo)", message: error.description)
            }

            for (layerIndex, path) in layers.enumerated() {
                guard let wanted = needed[layerIndex], !wanted.isEmpty else { continue }
                let reader = try ArchiveReader(layer: path)
                var ordinal = -1
                var remaining = wanted.count
                while remaining > 0, try reader.next() != nil {
                    ordinal += 1
                    guard var members = wanted[ordinal] else { continue }
                    remaining -= 1
                    let source = RootfsTree.Source(layer: layerIndex, ordinal: ordinal)
                    // The kernel goes to its own file, not into the initrd ("the entire container
                    // image besides the kernel", as the original Wyrcan): the next kernel would
                    // only hold a second copy of itself in RAM. Other hard-link names of the same
                    // file are the image's own and stay (with the data).
                    let isKernel = source == boot.kernel
                    if isKernel {
                        members.removeAll { $0.info.path == boot.kernelPath }
                        if members.isEmpty {
                            try copyKernel(from: reader, to: kernelFile, size: wanted[ordinal]![0].info.size, layer: layerIndex, path: boot.kernelPath)
                            continue
                        }
                    }
                    if source == boot.kernelLink { continue }
                    guard members[0].info.type == .regular else {
                        for member in members {
                            inode += 1
                            var info = member.info
                            info.inode = inode
                            try writer.writeHeader(info)
                        }
                        continue
                    }
                    inode += 1
                    var first = members[0].info
                    first.inode = inode
                    first.linkCount = UInt32(members.count)
                    try writer.writeHeader(first)
                    let isCmdline = source == boot.cmdline
                    var copied: Int64 = 0
                    var kernelError: FileError? = nil
                    do {
                        try reader.readData { chunk in
                            try writer.write(chunk)
                            copied += Int64(chunk.count)
                            if isCmdline { cmdlineBytes.append(contentsOf: chunk) }
                            if isKernel { do throws(FileError) { try kernelFile.write(chunk) } catch { kernelError = error } }
                        }
                    } catch let e as ArchiveError {
                        throw ArchiveError(operation: "layer \(layerIndex + 1)", message: "\(members[0].info.path): \(e.message)")
                    } catch {
                        throw ArchiveError(operation: "layer \(layerIndex + 1)", message: "\(error)")
                    }
                    if let kernelError { throw ArchiveError(operation: "write kernel", message: kernelError.description) }
                    guard copied == first.size else {
                        throw ArchiveError(operation: "layer \(layerIndex + 1)", message: "\(first.path): \(copied) of \(first.size) bytes in the layer")
                    }
                    for member in members.dropFirst() {
                        var info = member.info
                        info.inode = inode
                        info.linkCount = UInt32(members.count)
                        info.size = 0
                        try writer.writeHeader(info)
                    }
                }
                if remaining > 0 {
                    throw ArchiveError(operation: "layer \(layerIndex + 1)", message: "changed between reads (\(remaining) members missing)")
                }
            }
            try writer.close()
        } catch {
            throw .archive(error)
        }
        guard let text = String(validating: cmdlineBytes, as: UTF8.self) else {
            throw .cmdlineUnreadable("is not UTF-8 text")
        }
        // The kernel takes the cmdline up to its first NUL: the rest would be lost.
        if cmdlineBytes.contains(0) { throw .cmdlineUnreadable("contains a NUL byte, where the kernel would cut it short") }
        let tokens = KernelCmdline.tokenize(text)
        if tokens.contains(where: \.unterminatedQuote) { throw .cmdlineUnreadable("has an unbalanced double quote") }
        if let split = tokens.first(where: { !$0.isValidUTF8 }) {
            throw .cmdlineUnreadable("the kernel would split '\(split.raw)' inside a UTF-8 character (byte 0xA0, part of characters such as 'à'); put that parameter in double quotes")
        }
        return tokens.map(\.raw).joined(separator: " ")
    }
}
