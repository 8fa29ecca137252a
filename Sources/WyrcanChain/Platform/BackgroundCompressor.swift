import CArchive
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Compresses a byte stream into a file on a thread of its own, through libarchive's raw format
/// and a zstd or gzip filter, fed by a bounded queue of 1 MiB chunks. The chunks' buffers are
/// reused (`PageBuffer`), not allocated, zero-filled and unmapped again for every MiB.
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
    private var pending: [PageBuffer?] = []
    /// The chunk being filled.
    private var current: PageBuffer
    /// Emptied buffers, for the next chunks: enough for every chunk that can be queued, the one
    /// being compressed and the one being filled (guarded by `lock`).
    private var spare: [PageBuffer] = []
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
        current = try PageBuffer(capacity: Self.chunkSize)
        spare = try (0...Self.queuedChunks).map { _ throws(ArchiveError) in try PageBuffer(capacity: Self.chunkSize) }
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
            let n = min(current.room, bytes.count - offset)
            current.append(UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + n]))
            offset += n
            if current.room == 0 { try flush() }
        }
    }

    /// Ends the stream, waits for the compressor and closes the file.
    func finish() throws(ArchiveError) {
        guard started, !finished else { return }
        finished = true
        if !current.isEmpty { try? flush() }
        enqueue(nil)
        done.wait()
        if let failed { throw failed }
        try writer.close()
    }

    private func flush() throws(ArchiveError) {
        enqueue(current)
        lock.wait()
        let next = spare.popLast()
        lock.signal()
        if let next { current = next } else { current = try PageBuffer(capacity: Self.chunkSize) }
        if let failure { throw failure }
    }

    private func enqueue(_ chunk: PageBuffer?) {
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
            var error: ArchiveError? = nil
            if !skip {
                do throws(ArchiveError) { try writer.write(chunk.bytes) } catch let e { error = e }
            }
            chunk.removeAll()
            lock.wait()
            if let error { failed = error }
            spare.append(chunk)
            lock.signal()
        }
        done.signal()
    }
}
