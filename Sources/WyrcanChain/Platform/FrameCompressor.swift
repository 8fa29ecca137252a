import CArchive
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Compresses a cpio stream on several threads with a few MB per thread: the stream is cut into
/// independent zstd frames (or gzip members), each holding whole cpio members, compressed in
/// parallel and written in order.
///
/// Why whole members: Linux unpacks an initramfs one frame at a time and rejects a frame that
/// ends inside a member ("junk at the end of compressed archive"); frames that end between
/// members are accepted, and to `zstd -d` / `gzip -d` they are still one stream, so `cpio -i`
/// sees one archive. Why not libzstd's own workers (libarchive's `threads`): each of them holds
/// a job of four windows in and out, ≈ 80 MB of RSS at level 3 with two threads.
/// The cost: each frame starts with an empty window, ≈ 5 % more output than one frame.
final class FrameCompressor: StreamCompressor, @unchecked Sendable {
    /// A frame is cut at the first member boundary past this size.
    static let frameTarget = 2 << 20
    /// A member that would grow a frame past this is compressed as it arrives, in a frame of its
    /// own on the caller's thread, instead of being held in memory.
    static let frameLimit = 8 << 20

    private let file: FileHandleFD
    private let compression: CpioWriter.Compression
    private let level: Int?
    private let workers: Int
    /// One permit per frame handed out and not yet written; taking them all waits for the file
    /// to hold every frame so far.
    private let permits: DispatchSemaphore
    private let queue = DispatchQueue(label: "wyrcan.frames", attributes: .concurrent)
    /// Compressed frames that wait for the ones before them; whichever worker completes the run
    /// writes it. Workers never block on each other.
    private struct Order {
        var next = 0
        var ready: [Int: [UInt8]] = [:]
    }
    private let order = Locked(Order())
    /// The first failure (its own lock: the caller checks it often, workers write under `order`).
    private let failed = Locked<ArchiveError?>(nil)
    /// Frames handed out so far (the caller's thread only).
    private var sequence = 0
    /// The frame being filled.
    private var current: [UInt8] = []
    /// The frame being compressed on the caller's thread (a member past `frameLimit`).
    private var streaming: RawCompressedWriter?
    private var finished = false

    var failure: ArchiveError? { failed.withLock { $0 } }

    private func record(_ error: ArchiveError) {
        failed.withLock { if $0 == nil { $0 = error } }
    }

    init(path: String, compression: CpioWriter.Compression, level: Int?, workers: Int) throws(ArchiveError) {
        do throws(FileError) { file = try FileHandleFD.create(path) } catch {
            throw ArchiveError(operation: "open \(path)", message: error.description)
        }
        self.compression = compression
        self.level = level
        // More frames in flight than CPUs would hold their buffers without compressing faster.
        self.workers = max(1, min(workers, LinuxSystem.processorCount))
        permits = DispatchSemaphore(value: 0)
        for _ in 0..<self.workers { permits.signal() }  // (libdispatch traps on freeing a semaphore below its initial value)
        current.reserveCapacity(Self.frameTarget + (256 << 10))
    }

    /// Stops taking bytes: what follows is thrown away (the caller gave up on the output).
    func abandon() {
        record(ArchiveError(operation: "compress", message: "abandoned"))
    }

    func submit(_ bytes: UnsafeRawBufferPointer) throws(ArchiveError) {
        if let failure { throw failure }
        do throws(ArchiveError) {
            if streaming == nil && current.count + bytes.count > Self.frameLimit {
                // Every earlier frame goes first; then this one streams straight to the file.
                waitForAllWritten()
                let writer: RawCompressedWriter
                do throws(ArchiveError) {
                    writer = try RawCompressedWriter(.descriptor(file.fd), compression: compression, level: level)
                } catch {
                    releaseAll()
                    throw error
                }
                streaming = writer
                try writer.write(current)
                current.removeAll(keepingCapacity: true)
            }
            if let streaming {
                try streaming.write(bytes)
            } else {
                current.append(contentsOf: bytes)
            }
        } catch {
            record(error)
            throw error
        }
    }

    /// Marks the end of a cpio member: the frame may be cut here.
    func boundary() throws(ArchiveError) {
        if let streaming {
            self.streaming = nil
            defer { releaseAll() }
            do throws(ArchiveError) { try streaming.close() } catch { record(error) }
        } else if current.count >= Self.frameTarget {
            dispatchCurrent()
        }
        if let failure { throw failure }
    }

    /// Compresses and writes the rest, waits for every frame and closes the file.
    func finish() throws(ArchiveError) {
        guard !finished else { return }
        finished = true
        var error: ArchiveError? = nil
        if let streaming {
            // (Every frame before it was written when it started.)
            self.streaming = nil
            do throws(ArchiveError) { try streaming.close() } catch let e { error = e }
        } else {
            if !current.isEmpty { dispatchCurrent() }
            waitForAllWritten()
        }
        if let failure { error = failure }
        releaseAll()
        if let error { throw error }
    }

    private func waitForAllWritten() {
        for _ in 0..<workers { permits.wait() }
    }

    private func releaseAll() {
        for _ in 0..<workers { permits.signal() }
    }

    private func dispatchCurrent() {
        let frame = Frame(current)  // (takes the buffer over: `current` lets go of it next)
        current = []
        current.reserveCapacity(Self.frameTarget + (256 << 10))
        let number = sequence
        sequence += 1
        permits.wait()
        queue.async { [self] in
            var output: [UInt8] = []
            var error: ArchiveError? = nil
            if failure == nil {
                do throws(ArchiveError) {
                    output = try RawCompressedWriter.compress(frame.bytes, compression: compression, level: level)
                } catch let e { error = e }
            }
            frame.bytes = []
            if let error { record(error) }
            var written = 0
            order.withLock { order in
                order.ready[number] = output
                while let next = order.ready.removeValue(forKey: order.next) {
                    if failure == nil {
                        do throws(FileError) { try file.write(next) } catch {
                            record(ArchiveError(operation: "write", message: error.description))
                        }
                    }
                    order.next += 1
                    written += 1
                }
            }
            for _ in 0..<written { permits.signal() }
        }
    }

    /// A frame's input, let go of by the worker once compressed.
    private final class Frame: @unchecked Sendable {
        var bytes: [UInt8]
        init(_ bytes: [UInt8]) { self.bytes = bytes }
    }
}
