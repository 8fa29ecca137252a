import CArchive
#if canImport(Glibc)
import Glibc
#endif

/// What `CpioWriter` hands its bytes to when compression runs beside it.
protocol StreamCompressor: AnyObject {
    /// Why compressing failed, if it did.
    var failure: ArchiveError? { get }
    /// Takes the next bytes of the stream (copied; may block while the compressor catches up).
    func submit(_ bytes: UnsafeRawBufferPointer) throws(ArchiveError)
    /// A cpio member ended here.
    func boundary() throws(ArchiveError)
    /// Ends the stream, waits for the compressor and closes the output.
    func finish() throws(ArchiveError)
    /// The output is given up on: take (and drop) the rest as fast as possible.
    func abandon()
}

/// One zstd frame or gzip stream (or plain bytes) through libarchive's raw format and a
/// compression filter, into a file, an open descriptor or memory.
final class RawCompressedWriter {
    enum Target {
        case path(String)
        /// Written from its current offset; left open.
        case descriptor(Int32)
        /// Handed to the closure as libarchive writes it (on the writing thread).
        case sink((UnsafeRawBufferPointer) -> Void)
    }

    private let archive: OpaquePointer
    /// Where the compressed bytes go (target `.sink`).
    private var sink: ((UnsafeRawBufferPointer) -> Void)? = nil
    private var closed = false

    init(_ target: Target, compression: CpioWriter.Compression, level: Int?) throws(ArchiveError) {
        guard let a = archive_write_new(), let entry = archive_entry_new() else {
            throw ArchiveError(operation: "archive_write_new", message: "out of memory")
        }
        archive = a
        defer { archive_entry_free(entry) }
        func check(_ code: Int32, _ operation: String) throws(ArchiveError) {
            if code < ARCHIVE_WARN { throw .from(a, operation) }
        }
        do {
            try check(archive_write_set_format_raw(a), "raw format")
            switch compression {
            case .zstd: try check(archive_write_add_filter_zstd(a), "zstd filter")
            case .gzip: try check(archive_write_add_filter_gzip(a), "gzip filter")
            case .none: try check(archive_write_add_filter_none(a), "no filter")
            }
            if let level, compression != .none {
                try check(archive_write_set_filter_option(a, nil, "compression-level", String(level)), "compression level")
            }
            try check(archive_write_set_bytes_in_last_block(a, 1), "block size")
            // Unblocked: the filter's output (≈ 128 KiB at a time) goes to the target as it is,
            // not copied into 10 KiB blocks first.
            try check(archive_write_set_bytes_per_block(a, 0), "block size")
            switch target {
            case .path(let path):
                try check(archive_write_open_filename(a, path), "open \(path)")
            case .descriptor(let fd):
                try check(archive_write_open_fd(a, fd), "open the initrd")
            case .sink(let sink):
                self.sink = sink
                let client = Unmanaged.passUnretained(self).toOpaque()
                try check(archive_write_open(a, client, nil, { _, client, buffer, length in
                    let writer = Unmanaged<RawCompressedWriter>.fromOpaque(client!).takeUnretainedValue()
                    writer.sink?(UnsafeRawBufferPointer(start: buffer, count: length))
                    return la_ssize_t(length)
                }, nil), "open")
            }
            archive_entry_set_filetype(entry, 0o100000)  // AE_IFREG
            try check(archive_write_header(a, entry), "start the stream")
        }
        // (On a throw above, deinit runs — every stored property is set — and frees `archive`.)
    }

    deinit {
        if !closed { archive_write_close(archive) }
        archive_write_free(archive)
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws(ArchiveError) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        if archive_write_data(archive, base, bytes.count) < 0 { throw .from(archive, "compress") }
    }

    /// Ends the frame (and the file, for a path).
    func close() throws(ArchiveError) {
        closed = true
        if archive_write_close(archive) < ARCHIVE_WARN { throw .from(archive, "close") }
    }

    /// `input` as one compressed frame (a gzip stream), handed to `sink` as it is produced.
    static func compress(_ input: UnsafeRawBufferPointer, compression: CpioWriter.Compression, level: Int?,
                         to sink: @escaping (UnsafeRawBufferPointer) -> Void) throws(ArchiveError) {
        let writer = try RawCompressedWriter(.sink(sink), compression: compression, level: level)
        try writer.write(input)
        try writer.close()
    }
}
