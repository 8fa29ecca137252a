import CArchive
#if canImport(Glibc)
import Glibc
#endif

/// Reads any archive libarchive knows (tar, cpio, …), with any compression it knows
/// (gzip, zstd, …), one member at a time.
public final class ArchiveReader {
    private let archive: OpaquePointer
    /// The current member's size from its header (nil when the format gives none).
    private var currentSize: Int64? = nil

    /// Feeds libarchive a file (or, for a gzip layer, its inflated bytes) and then, optionally,
    /// a trailer (see `init(layer:)`).
    final class Source {
        let fd: Int32
        let inflater: GzipInflater?
        var buffer = [UInt8](repeating: 0, count: 1 << 18)
        var trailer: [UInt8]
        init(fd: Int32, inflater: GzipInflater?, trailer: [UInt8]) {
            self.fd = fd
            self.inflater = inflater
            self.trailer = trailer
        }
        deinit { close(fd) }

        /// The next bytes into `buffer`: a count, 0 at the end, -1 on an error.
        func fill() -> Int {
            guard let inflater else { return buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) } }
            switch buffer.withUnsafeMutableBytes({ b in Result { () throws(ArchiveError) in try inflater.read(into: b) } }) {
            case .success(let n): return n
            case .failure(let error):
                failure = error
                return -1
            }
        }
        /// Seeks forward by up to `request` bytes within the file (never into the trailer);
        /// returns how far, which libarchive makes up by reading.
        func skip(_ request: Int64) -> Int64 {
            var st = stat()
            let position = lseek(fd, 0, SEEK_CUR)
            guard position >= 0, fstat(fd, &st) == 0 else { return 0 }
            let step = max(0, min(request, Int64(st.st_size) - Int64(position)))
            return lseek(fd, off_t(step), SEEK_CUR) >= 0 ? step : 0
        }

        /// Why `fill` failed, for the error libarchive then reports.
        var failure: ArchiveError? = nil
    }

    private var source: Source?

    public convenience init(path: String) throws(ArchiveError) {
        try self.init(path: path, trailer: [])
    }

    /// Opens an image layer. Some writers (umoci 0.4) end a layer's tar stream right after the
    /// last member's data, without padding or end-of-archive blocks; GNU tar and libarchive
    /// reject that, Go's archive/tar (Docker, umoci) accepts it. To read such layers like the
    /// tools that made them, the stream is followed by a compressed block of zeros in the layer's
    /// own format (a second gzip member / zstd frame, or plain zeros), which completes the
    /// padding and ends the archive. Integrity is unaffected: blobs are digest-checked as stored.
    ///
    /// A gzip layer is inflated here (ISA-L or zlib, `GzipInflater`), not by libarchive's zlib.
    public convenience init(layer path: String) throws(ArchiveError) {
        let compression = Self.compression(of: path)
        guard compression == .gzip else { try self.init(path: path, trailer: Self.trailer(for: compression)); return }
        try self.init(path: path, trailer: Self.trailer(for: .none), inflater: try GzipInflater(path: path))
    }

    public enum LayerCompression: Sendable { case gzip, zstd, none }

    /// What a layer blob is compressed with, from its magic bytes.
    public static func compression(of path: String) -> LayerCompression {
        var magic = [UInt8](repeating: 0, count: 4)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd >= 0 { _ = read(fd, &magic, 4); close(fd) }
        if magic[0] == 0x1f && magic[1] == 0x8b { return .gzip }
        if magic == [0x28, 0xb5, 0x2f, 0xfd] { return .zstd }
        return .none
    }

    static func trailer(for compression: LayerCompression) -> [UInt8] {
        switch compression {
        case .gzip: return gzipZeros
        case .zstd: return zstdZeros
        case .none: return [UInt8](repeating: 0, count: 10240)
        }
    }

    /// Writes the decompressed tar stream of a gzip or zstd layer to `output` (with the end-of-
    /// archive blocks `init(layer:)` would add), so it can be read more than once at the cost of
    /// one decompression.
    public static func decompress(layer path: String, to output: String) throws(ArchiveError) {
        let file: FileHandleFD
        do throws(FileError) { file = try FileHandleFD.create(output) } catch {
            throw ArchiveError(operation: "create \(output)", message: error.description)
        }
        var failure: FileError? = nil
        do throws(ArchiveError) {
            let compression = compression(of: path)
            if compression == .gzip {
                try inflate(path) { chunk throws(FileError) in
                    do throws(FileError) { try file.write(chunk) } catch { failure = error; throw error }
                }
                return
            }
            try readDecompressed(path, trailer: trailer(for: compression)) { chunk in
                // (Stops at the first failed write: a full disk need not decompress the rest.)
                do throws(FileError) { try file.write(chunk) } catch { failure = error; throw error }
            }
        } catch {
            if let failure { throw ArchiveError(operation: "write \(output)", message: failure.description) }
            throw error
        }
    }

    /// A gzip layer's tar stream and the end-of-archive blocks, through `GzipInflater`.
    private static func inflate(_ path: String, _ write: (UnsafeRawBufferPointer) throws(FileError) -> Void) throws(ArchiveError) {
        let inflater = try GzipInflater(path: path)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        let zeros = UnsafeMutableRawBufferPointer.allocate(byteCount: trailer(for: .none).count, alignment: 16)
        zeros.initializeMemory(as: UInt8.self, repeating: 0)
        defer { zeros.deallocate() }
        func written(_ bytes: UnsafeRawBufferPointer) throws(ArchiveError) {
            do throws(FileError) { try write(bytes) } catch { throw ArchiveError(operation: "write", message: error.description) }
        }
        while case let n = try inflater.read(into: buffer), n > 0 { try written(UnsafeRawBufferPointer(rebasing: buffer[0..<n])) }
        try written(UnsafeRawBufferPointer(zeros))
    }

    /// The whole decompressed contents of a (small) compressed file, e.g. a kernel module.
    public static func decompressedBytes(of path: String) throws(ArchiveError) -> [UInt8] {
        var bytes: [UInt8] = []
        try readDecompressed(path, trailer: []) { bytes.append(contentsOf: $0) }
        return bytes
    }

    /// The single stream of a compressed file (raw format), chunk by chunk.
    private static func readDecompressed(_ path: String, trailer: [UInt8], _ body: (UnsafeRawBufferPointer) throws -> Void) throws(ArchiveError) {
        let reader = try ArchiveReader(path: path, trailer: trailer, raw: true)
        guard try reader.next() != nil else { throw ArchiveError(operation: "decompress \(path)", message: "empty stream") }
        do {
            try reader.readData(body)
        } catch let error as ArchiveError {
            throw ArchiveError(operation: "decompress \(path)", message: error.message)
        } catch {
            throw ArchiveError(operation: "decompress \(path)", message: "\(error)")
        }
    }

    /// gzip member and zstd frame each holding 10 240 zero bytes (a tar end-of-archive).
    static let gzipZeros: [UInt8] = [
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xed, 0xc1, 0x01, 0x0d, 0x00, 0x00, 0x00, 0xc2,
        0xa0, 0xf7, 0x4f, 0x6d, 0x0e, 0x37, 0xa0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x37,
        0x03, 0x9a, 0xde, 0x1d, 0x27, 0x00, 0x28, 0x00, 0x00,
    ]
    static let zstdZeros: [UInt8] = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x68, 0x45, 0x00, 0x00, 0x08, 0x00, 0x01, 0x00, 0xfc, 0x87, 0x07, 0x42]

    private init(path: String, trailer: [UInt8], raw: Bool = false, inflater: GzipInflater? = nil) throws(ArchiveError) {
        guard let a = archive_read_new() else {
            throw ArchiveError(operation: "archive_read_new", message: "out of memory")
        }
        archive = a
        // Only what image layers, OCI archives and initrds use: tar (ustar, pax, GNU) and cpio,
        // with gzip, zstd, xz, bzip2 or no compression. Naming them (not *_all) keeps libarchive's
        // XAR reader, and with it libxml2 and ICU (≈ 35 MB), out of the statically linked binary.
        if raw {
            archive_read_support_format_raw(a)
        } else {
            archive_read_support_format_tar(a)
            archive_read_support_format_cpio(a)
        }
        archive_read_support_filter_gzip(a)
        archive_read_support_filter_zstd(a)
        archive_read_support_filter_xz(a)
        archive_read_support_filter_bzip2(a)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            // (deinit frees the archive: every stored property is set.)
            throw ArchiveError(operation: "open \(path)", message: String(cString: strerror(errno)))
        }
        let src = Source(fd: fd, inflater: inflater, trailer: trailer)
        source = src
        let context = Unmanaged.passUnretained(src).toOpaque()
        // A plain file's members are skipped by seeking (the merge reads only headers); a
        // stream that is inflated here, or by a libarchive filter, is read through.
        let status = inflater == nil
            ? archive_read_open2(a, context, nil, readFromSource, skipInFile, nil)
            : archive_read_open2(a, context, nil, readFromSource, nil, nil)
        guard status == ARCHIVE_OK else {
            // Every stored property is set, so deinit runs and frees the archive (not here too).
            throw src.failure ?? ArchiveError.from(a, "open \(path)")
        }
    }

    deinit { archive_read_free(archive) }

    /// The next member's metadata, or nil at the end.
    public func next() throws(ArchiveError) -> ArchiveEntryInfo? {
        var entry: OpaquePointer? = nil
        let code = archive_read_next_header(archive, &entry)
        if code == ARCHIVE_EOF { return nil }
        guard code >= ARCHIVE_WARN, let entry else { throw source?.failure ?? .from(archive, "read header") }
        let mode = archive_entry_mode(entry)
        let type = ArchiveEntryInfo.typeBits.first { $0.1 == (UInt32(mode) & 0o170000) }?.0 ?? .regular
        let path = try Self.text(archive_entry_pathname_utf8(entry), archive_entry_pathname(entry), what: "name") ?? ""
        var info = ArchiveEntryInfo(path: path, type: type, permissions: UInt32(mode) & 0o7777, size: Int64(archive_entry_size(entry)))
        currentSize = archive_entry_size_is_set(entry) != 0 ? info.size : nil
        // Owners beyond 32 bits (pax allows them) would wrap, to root for 2^32: refused.
        let uid = archive_entry_uid(entry), gid = archive_entry_gid(entry)
        guard let u = UInt32(exactly: uid), let g = UInt32(exactly: gid) else {
            throw ArchiveError(operation: "read header", message: "\(Message.quoted(path)): owner \(uid):\(gid) does not fit in 32 bits")
        }
        info.uid = u
        info.gid = g
        info.mtime = Int64(archive_entry_mtime(entry))
        // UTF-8 when libarchive can convert (pax headers), else the raw bytes (ustar in the C locale).
        info.symlinkTarget = try Self.text(archive_entry_symlink_utf8(entry), archive_entry_symlink(entry), what: "\(Message.quoted(path))'s link target")
        info.hardlinkTarget = try Self.text(archive_entry_hardlink_utf8(entry), archive_entry_hardlink(entry), what: "\(Message.quoted(path))'s link target")
        info.linkCount = UInt32(archive_entry_nlink(entry))
        info.inode = UInt64(archive_entry_ino64(entry))
        info.deviceMajor = UInt32(archive_entry_rdevmajor(entry))
        info.deviceMinor = UInt32(archive_entry_rdevminor(entry))
        return info
    }

    /// A header text: UTF-8 when libarchive can convert it (pax headers), else the raw bytes
    /// (ustar in the C locale), which must then be UTF-8 themselves. Bytes that are not are
    /// refused, not repaired: two names repaired alike (`a\xff`, `a\xfe`) would become one file.
    static func text(_ utf8: UnsafePointer<CChar>?, _ raw: UnsafePointer<CChar>?, what: String) throws(ArchiveError) -> String? {
        if let utf8 { return String(cString: utf8) }
        guard let raw else { return nil }
        if let text = String(validatingCString: raw) { return text }
        let bytes = Array(UnsafeBufferPointer(start: raw, count: strlen(raw))).map { UInt8(bitPattern: $0) }
        throw ArchiveError(operation: "read header", message: "the \(what) \(Message.quoted(bytes: bytes)) is not UTF-8; Wyrcan keeps names as UTF-8 text and would merge names that differ only there: rename it in the image")
    }

    /// Reads the current member's data, calling `body` with each chunk. The holes of a sparse
    /// member (GNU or pax sparse tar) are handed over as zeros: libarchive returns only the
    /// data blocks, each at its offset, and the file's end as the offset at EOF.
    public func readData(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        var buffer: UnsafeRawPointer? = nil
        var size = 0
        var offset: la_int64_t = 0
        var position: Int64 = 0
        while true {
            let code = archive_read_data_block(archive, &buffer, &size, &offset)
            guard code == ARCHIVE_EOF || code >= ARCHIVE_WARN else { throw source?.failure ?? ArchiveError.from(archive, "read data") }
            // (At EOF no further than the member's size: a tar hard link's header may give a
            // size its member has no data for.)
            let end = code == ARCHIVE_EOF ? min(Int64(offset), currentSize ?? Int64(offset)) : Int64(offset)
            if end > position {
                try Self.zeros(count: end - position, body)
                position = end
            }
            if code == ARCHIVE_EOF { return }
            if size > 0 {
                try body(UnsafeRawBufferPointer(start: buffer, count: size))
                position += Int64(size)
            }
        }
    }

    private static let zeroBlock = [UInt8](repeating: 0, count: 64 << 10)

    private static func zeros(count: Int64, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        var left = count
        try zeroBlock.withUnsafeBytes { block in
            while left > 0 {
                let n = Int(min(left, Int64(block.count)))
                try body(UnsafeRawBufferPointer(rebasing: block[..<n]))
                left -= Int64(n)
            }
        }
    }
}

/// libarchive's read callback: the source's next bytes, then its trailer once.
private func readFromSource(_ archive: OpaquePointer?, _ client: UnsafeMutableRawPointer?, _ bufferOut: UnsafeMutablePointer<UnsafeRawPointer?>?) -> la_ssize_t {
    let src = Unmanaged<ArchiveReader.Source>.fromOpaque(client!).takeUnretainedValue()
    let n = src.fill()
    if n > 0 {
        src.buffer.withUnsafeBytes { bufferOut!.pointee = $0.baseAddress }
        return n
    }
    if n < 0 { return -1 }
    guard !src.trailer.isEmpty else { return 0 }
    // End of file: hand over the trailer once.
    src.buffer = src.trailer
    src.trailer = []
    src.buffer.withUnsafeBytes { bufferOut!.pointee = $0.baseAddress }
    return src.buffer.count
}

/// libarchive's skip callback for a plain file (see `ArchiveReader.Source.skip`).
private func skipInFile(_ archive: OpaquePointer?, _ client: UnsafeMutableRawPointer?, _ request: la_int64_t) -> la_int64_t {
    Unmanaged<ArchiveReader.Source>.fromOpaque(client!).takeUnretainedValue().skip(request)
}
