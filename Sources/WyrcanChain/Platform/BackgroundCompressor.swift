import CArchive
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Compresses a byte stream into a file on a thread of its own, through libarchive's raw format
/// and a zstd or gzip filter, fed by a bounded queue of 1 MiB chunks.
///
/// Why not libarchive's multi-threaded zstd: its workers each hold a job's input and output
/// (≈ 80 MB of RSS at level 3 with two threads), while one compressor thread next to the thread
/// that reads the layers keeps both cores busy with a few MB in flight.
final class BackgroundCompressor: @unchecked Sendable {
    static let chunkSize = 1 << 20
    static let queuedChunks = 2

    private let archive: OpaquePointer
    private let queue = DispatchQueue(label: "wyrcan.compressor")
    private let lock = DispatchSemaphore(value: 1)
    private let freeSlots = DispatchSemaphore(value: BackgroundCompressor.queuedChunks)
    private let filledSlots = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)
    /// Chunks waiting for the compressor; nil marks the end of the stream.
    private var pending: [[UInt8]?] = []
    /// The chunk being filled: `filled` of its bytes are data.
    private var current = [UInt8](repeating: 0, count: BackgroundCompressor.chunkSize)
    private var filled = 0
    private var failed: ArchiveError?
    /// The compressor thread runs (init succeeded); until then there is nothing to finish.
    private var started = false
    private var finished = false

    /// Why compressing failed, if it did.
    var failure: ArchiveError? {
        lock.wait()
        defer { lock.signal() }
        return failed
    }

    init(path: String, compression: CpioWriter.Compression, level: Int?) throws(ArchiveError) {
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
            try check(archive_write_open_filename(a, path), "open \(path)")
            archive_entry_set_filetype(entry, 0o100000)  // AE_IFREG
            try check(archive_write_header(a, entry), "start \(path)")
        }
        // (On a throw above, deinit runs — every stored property is set — and frees `archive`.)
        started = true
        queue.async { self.run() }
    }

    deinit {
        try? finish()
        archive_write_free(archive)
    }

    /// Copies `bytes` into the stream; blocks while the queue is full.
    func submit(_ bytes: UnsafeRawBufferPointer) throws(ArchiveError) {
        var offset = 0
        while offset < bytes.count {
            let n = min(Self.chunkSize - filled, bytes.count - offset)
            current.withUnsafeMutableBytes { out in
                out.baseAddress!.advanced(by: filled).copyMemory(from: bytes.baseAddress!.advanced(by: offset), byteCount: n)
            }
            filled += n
            offset += n
            if filled == Self.chunkSize { try flush() }
        }
    }

    /// Ends the stream, waits for the compressor and closes the file.
    func finish() throws(ArchiveError) {
        guard started, !finished else { return }
        finished = true
        if filled > 0 { try? flush() }
        enqueue(nil)
        done.wait()
        if let failed { throw failed }
        if archive_write_close(archive) < ARCHIVE_WARN { throw .from(archive, "close") }
    }

    private func flush() throws(ArchiveError) {
        enqueue(filled == Self.chunkSize ? current : Array(current.prefix(filled)))
        current = [UInt8](repeating: 0, count: Self.chunkSize)
        filled = 0
        if let failure { throw failure }
    }

    private func enqueue(_ chunk: [UInt8]?) {
        freeSlots.wait()
        lock.wait()
        pending.append(chunk)
        lock.signal()
        filledSlots.signal()
    }

    /// The compressor thread: writes chunks until the end marker; after a failure it keeps taking
    /// chunks (so the producer never blocks forever) and the failure is reported to it.
    private func run() {
        while true {
            filledSlots.wait()
            lock.wait()
            let chunk = pending.removeFirst()
            let skip = failed != nil
            lock.signal()
            freeSlots.signal()
            guard let chunk else { break }
            if skip { continue }
            let written = chunk.withUnsafeBytes { archive_write_data(archive, $0.baseAddress, $0.count) }
            if written < 0 {
                let error = ArchiveError.from(archive, "compress")
                lock.wait()
                failed = error
                lock.signal()
            }
        }
        done.signal()
    }
}
