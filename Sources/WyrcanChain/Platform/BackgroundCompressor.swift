import CArchive
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Compresses a byte stream into a file on a thread of its own, through libarchive's raw format
/// and a zstd or gzip filter, fed by a bounded queue of 1 MiB chunks.
///
/// One frame, so the best ratio and the least memory (a few MB in flight); `FrameCompressor`
/// uses more threads.
final class BackgroundCompressor: StreamCompressor, @unchecked Sendable {
    static let chunkSize = 1 << 20
    static let queuedChunks = 2

    private let writer: RawCompressedWriter
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
        writer = try RawCompressedWriter(.path(path), compression: compression, level: level)
        started = true
        queue.async { self.run() }
    }

    deinit {
        try? finish()
    }

    func abandon() {
        lock.wait()
        if failed == nil { failed = ArchiveError(operation: "compress", message: "abandoned") }
        lock.signal()
    }

    /// One stream: member boundaries do not matter.
    func boundary() throws(ArchiveError) {}

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
        try writer.close()
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
            do throws(ArchiveError) {
                try writer.write(chunk)
            } catch {
                lock.wait()
                failed = error
                lock.signal()
            }
        }
        done.signal()
    }
}
