#if canImport(Glibc)
import Glibc
#endif

/// Writes a directory tree from disk as a cpio newc archive (owner root), parents before
/// children: the boot agent's extra initrd segment (volumes, injected files), which the kernel
/// unpacks over the image's own archive.
public enum DirectoryArchiver {
    /// Archives everything below `root` (paths relative to it) into `output`. `over` is the
    /// image the archive will be unpacked over: the kernel applies a directory entry's mode and
    /// owner to an existing directory and replaces a symlink by it, so a directory the image has
    /// keeps the image's metadata, and one the image has as a symlink gets no entry (what is
    /// below it lands where the link points).
    public static func archive(
        root: String, to output: String, compression: CpioWriter.Compression = .zstd,
        over image: [String: ArchiveEntryInfo] = [:]
    ) throws(ArchiveError) {
        let writer = try CpioWriter(path: output, compression: compression)
        try add(root, relative: "", writer: writer, image: image)
        try writer.close()
    }

    private static func add(_ directory: String, relative: String, writer: CpioWriter, image: [String: ArchiveEntryInfo]) throws(ArchiveError) {
        let names: [String]
        do throws(FileError) { names = try FileSystem.list(directory).sorted() } catch {
            throw ArchiveError(operation: directory, message: error.description)
        }
        for name in names {
            let path = directory + "/" + name
            let rel = relative.isEmpty ? name : relative + "/" + name
            var st = stat()
            guard lstat(path, &st) == 0 else { throw ArchiveError(operation: path, message: String(cString: strerror(errno))) }
            let permissions = UInt32(st.st_mode) & 0o7777
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                switch image[rel]?.type {
                case .symlink?:
                    break
                case .directory?:
                    try writer.writeHeader(image[rel]!)
                default:
                    var info = ArchiveEntryInfo(path: rel, type: .directory, permissions: permissions)
                    info.mtime = Int64(st.st_mtim.tv_sec)
                    try writer.writeHeader(info)
                }
                try add(path, relative: rel, writer: writer, image: image)
            case S_IFLNK:
                var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                let n = readlink(path, &buffer, buffer.count - 1)
                guard n >= 0 else { throw ArchiveError(operation: path, message: String(cString: strerror(errno))) }
                var info = ArchiveEntryInfo(path: rel, type: .symlink, permissions: 0o777)
                info.symlinkTarget = String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
                try writer.writeHeader(info)
            case S_IFREG:
                var info = ArchiveEntryInfo(path: rel, type: .regular, permissions: permissions, size: Int64(st.st_size))
                info.mtime = Int64(st.st_mtim.tv_sec)
                try writer.writeHeader(info)
                let file: FileHandleFD
                do throws(FileError) { file = try FileHandleFD.read(path) } catch { throw ArchiveError(operation: path, message: error.description) }
                while true {
                    let chunk: [UInt8]
                    do throws(FileError) { chunk = try file.read(upTo: 1 << 20) } catch { throw ArchiveError(operation: path, message: error.description) }
                    if chunk.isEmpty { break }
                    var failure: ArchiveError? = nil
                    chunk.withUnsafeBytes { b in
                        do throws(ArchiveError) { try writer.write(b) } catch { failure = error }
                    }
                    if let failure { throw failure }
                }
            default:
                continue
            }
        }
    }

    /// Appends `segment` to `initrd` after zero padding to 4 bytes (the kernel unpacks
    /// concatenated, separately compressed cpio archives, skipping zeros between them).
    public static func append(_ segment: String, to initrd: String) throws(FileError) {
        let out = try FileHandleFD(path: initrd, flags: O_WRONLY | O_APPEND)
        if let size = FileSystem.size(initrd), size % 4 != 0 {
            try out.write([UInt8](repeating: 0, count: Int(4 - size % 4)))
        }
        try FileHandleFD.read(segment).copyRemaining(to: out)
    }
}
