import CArchive
#if canImport(Glibc)
import Glibc
#endif

/// A libarchive failure, with libarchive's own message.
public struct ArchiveError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let message: String
    public var description: String { Message.oneLine("\(operation): \(message)") }

    static func from(_ archive: OpaquePointer?, _ operation: String) -> ArchiveError {
        var text = archive.flatMap { archive_error_string($0) }.map { String(cString: $0) } ?? "unknown error"
        // libarchive's file writers say only "Write error"; the reason is in its errno. (EILSEQ
        // and EINVAL are its codes for a bad format and a misuse: their text would mislead.)
        if let archive, archive_errno(archive) > 0, archive_errno(archive) != EILSEQ, archive_errno(archive) != EINVAL {
            let reason = String(cString: strerror(archive_errno(archive)))
            if !text.contains(reason) { text += ": " + reason }
        }
        return ArchiveError(operation: operation, message: text)
    }
}

/// The metadata of one archive member, independent of libarchive's `archive_entry`.
public struct ArchiveEntryInfo: Sendable, Equatable {
    public enum FileType: Sendable, Equatable {
        case regular, directory, symlink, characterDevice, blockDevice, fifo, socket
    }

    public var path: String
    public var type: FileType
    /// Permission bits including setuid/setgid/sticky (no file-type bits).
    public var permissions: UInt32
    public var uid: UInt32 = 0
    public var gid: UInt32 = 0
    public var mtime: Int64 = 0
    public var size: Int64 = 0
    /// For symlinks: the target.
    public var symlinkTarget: String? = nil
    /// For hard links: the path of the member this one links to.
    public var hardlinkTarget: String? = nil
    public var deviceMajor: UInt32 = 0
    public var deviceMinor: UInt32 = 0
    /// Inode number written to cpio (members of one hard-link group share it); 0 = let libarchive choose.
    public var inode: UInt64 = 0
    public var linkCount: UInt32 = 1

    public init(path: String, type: FileType, permissions: UInt32, size: Int64 = 0) {
        self.path = path
        self.type = type
        self.permissions = permissions
        self.size = size
    }

    static let typeBits: [(FileType, UInt32)] = [
        (.regular, 0o100000), (.directory, 0o040000), (.symlink, 0o120000),
        (.characterDevice, 0o020000), (.blockDevice, 0o060000), (.fifo, 0o010000), (.socket, 0o140000),
    ]

    var modeTypeBits: UInt32 { Self.typeBits.first { $0.0 == type }!.1 }
}

/// Writes a cpio "newc" archive (the initramfs format) through libarchive, optionally compressed.
public final class CpioWriter {
    public enum Compression: String, Sendable, CaseIterable {
        case zstd, gzip, none
    }

    private let archive: OpaquePointer
    private let entry: OpaquePointer
    private var closed = false
    /// Compresses what libarchive writes, beside the caller (nil: no compression).
    private var compressor: StreamCompressor? = nil

    /// Creates the archive at `path` (truncating it). `threads` > 1 compresses on that many
    /// threads in independent frames of whole members (`FrameCompressor`, a few MB per thread);
    /// otherwise one compressor thread writes a single frame beside the caller.
    public init(path: String, compression: Compression, level: Int? = nil, threads: Int = 1) throws(ArchiveError) {
        guard let a = archive_write_new(), let e = archive_entry_new() else {
            throw ArchiveError(operation: "archive_write_new", message: "out of memory")
        }
        archive = a
        entry = e
        do {
            if compression != .none {
                compressor = threads > 1
                    ? try FrameCompressor(path: path, compression: compression, level: level, workers: threads)
                    : try BackgroundCompressor(path: path, compression: compression, level: level)
            }
            try check(archive_write_set_format_cpio_newc(a), "cpio newc format")
            try check(archive_write_add_filter_none(a), "no filter")
            // Initramfs images are read by the kernel; no block padding is needed.
            try check(archive_write_set_bytes_in_last_block(a, 1), "block size")
            if let compressor {
                // Unblocked, so that each member's end is where the frame compressor sees it.
                try check(archive_write_set_bytes_per_block(a, compressor is FrameCompressor ? 0 : 1 << 16), "block size")
                let client = Unmanaged.passUnretained(self).toOpaque()
                try check(archive_write_open(a, client, nil, { _, client, buffer, length in
                    let writer = Unmanaged<CpioWriter>.fromOpaque(client!).takeUnretainedValue()
                    // A failure is kept by the compressor and reported by write(_:) or close().
                    do throws(ArchiveError) { try writer.compressor?.submit(UnsafeRawBufferPointer(start: buffer, count: length)) } catch { return -1 }
                    return la_ssize_t(length)
                }, nil), "open \(path)")
            } else {
                try check(archive_write_open_filename(a, path), "open \(path)")
            }
        }
        // (On a throw above, deinit runs — every stored property is set — and frees both.)
    }

    deinit {
        if !closed {
            // An error midway: libarchive pads the open member with zeros up to its size; that
            // output is thrown away, so the compressor drops it instead of compressing it.
            compressor?.abandon()
            archive_write_close(archive)
        }
        // Ends the compressor thread even when close() was never reached (an error midway).
        try? compressor?.finish()
        archive_write_free(archive)
        archive_entry_free(entry)
    }

    private func check(_ code: Int32, _ operation: String) throws(ArchiveError) {
        if code < ARCHIVE_WARN { throw .from(archive, operation) }
    }

    /// Writes a member header. For a regular file, follow with `write(_:)` calls totalling `size`.
    public func writeHeader(_ info: ArchiveEntryInfo) throws(ArchiveError) {
        if let compressor {
            // The previous member's data padding is written now, then the frame may end.
            if archive_write_finish_entry(archive) < ARCHIVE_WARN { throw compressor.failure ?? .from(archive, "finish member") }
            try compressor.boundary()
        }
        archive_entry_clear(entry)
        // The bytes as they are: the _utf8 setters convert through the locale, and in the C
        // locale of an initramfs a name such as "Főtanúsítvány.pem" (ca-certificates) fails.
        archive_entry_set_pathname(entry, info.path)
        archive_entry_set_mode(entry, info.modeTypeBits | (info.permissions & 0o7777))
        archive_entry_set_uid(entry, la_int64_t(info.uid))
        archive_entry_set_gid(entry, la_int64_t(info.gid))
        // newc holds 32 unsigned bits; libarchive would write a time before 1970 as 2106.
        archive_entry_set_mtime(entry, time_t(min(max(info.mtime, 0), Int64(UInt32.max))), 0)
        if info.inode != 0 { archive_entry_set_ino64(entry, la_int64_t(info.inode)) }
        archive_entry_set_nlink(entry, UInt32(info.linkCount))
        // Non-regular members carry no data (a symlink's target is written by libarchive).
        archive_entry_set_size(entry, info.type == .regular ? la_int64_t(info.size) : 0)
        switch info.type {
        case .regular: break
        case .symlink: archive_entry_set_symlink(entry, info.symlinkTarget ?? "")
        case .characterDevice, .blockDevice:
            archive_entry_set_rdevmajor(entry, dev_t(info.deviceMajor))
            archive_entry_set_rdevminor(entry, dev_t(info.deviceMinor))
        default: break
        }
        if archive_write_header(archive, entry) < ARCHIVE_WARN {
            throw compressor?.failure ?? .from(archive, "write header of \(info.path)")
        }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws(ArchiveError) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        let written = archive_write_data(archive, base, bytes.count)
        if written < 0 { throw compressor?.failure ?? .from(archive, "write data") }
    }

    public func close() throws(ArchiveError) {
        closed = true
        let status = archive_write_close(archive)
        var finishing: ArchiveError? = nil
        do throws(ArchiveError) { try compressor?.finish() } catch { finishing = error }
        if status < ARCHIVE_WARN { throw compressor?.failure ?? finishing ?? .from(archive, "close") }
        if let finishing { throw finishing }
    }
}
