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
    /// One permit per frame being filled, compressed or waiting to be written: the caller takes
    /// one before it fills a frame (so a frame waits for a free worker before it holds memory,
    /// not after), hands it to the worker with the frame, and the writer returns it. Taking them
    /// all waits for the file to hold every frame so far.
    private let permits: DispatchSemaphore
    /// Permits the caller holds: one while it fills `current`, all of them while a member
    /// streams or at the end.
    private var holding = 0
    private let queue = DispatchQueue(label: "wyrcan.frames", attributes: .concurrent)
    /// The frame whose output goes to the file now, and compressed frames that wait for the ones
    /// before them; the worker that completes the frame in line writes the run after it. Workers
    /// never wait for each other's compression, only for this lock.
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
    private var current = FrameBytes()
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
                    current = FrameBytes()  // (its permit goes back with the others)
                    releaseAll()
                    throw error
                }
                streaming = writer
                for chunk in current.chunks { try writer.write(chunk) }
                current = FrameBytes()
            }
            if let streaming {
                try streaming.write(bytes)
            } else if !bytes.isEmpty {
                if holding == 0 {
                    permits.wait()
                    holding = 1
                }
                current.append(bytes)
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

    /// Takes every permit (the caller then holds them all).
    private func waitForAllWritten() {
        for _ in holding..<workers { permits.wait() }
        holding = workers
    }

    private func releaseAll() {
        for _ in 0..<holding { permits.signal() }
        holding = 0
    }

    private func dispatchCurrent() {
        let frame = Frame(current)  // (takes the chunks over: `current` lets go of them next)
        current = FrameBytes()
        let number = sequence
        sequence += 1
        holding = 0  // (the frame's permit goes with it, back when it is written)
        queue.async { [self] in
            // The frame's output goes straight to the file while every frame before it is
            // written (the usual case for the oldest frame in flight); until then it waits here.
            var pending: [UInt8] = []
            let inputBytes = frame.bytes.count  // (read here: `frame.bytes` is lent out below)
            func write(_ bytes: UnsafeRawBufferPointer) {
                guard failure == nil, !bytes.isEmpty else { return }
                do throws(FileError) { try file.write(bytes) } catch {
                    record(ArchiveError(operation: "write", message: error.description))
                }
            }
            func writePending() {
                pending.withUnsafeBytes { write($0) }
                pending = []
            }
            if failure == nil {
                do throws(ArchiveError) {
                    try RawCompressedWriter.compress(&frame.bytes.chunks, compression: compression, level: level) { bytes in
                        self.order.withLock { order in
                            if order.next == number {
                                writePending()
                                write(bytes)
                            } else {
                                if pending.isEmpty { pending.reserveCapacity(inputBytes + inputBytes / 64 + (64 << 10)) }
                                pending.append(contentsOf: bytes)
                            }
                        }
                    }
                } catch { record(error) }
            }
            frame.bytes = FrameBytes()
            var written = 0
            order.withLock { order in
                guard order.next == number else {
                    order.ready[number] = pending
                    pending = []
                    return
                }
                writePending()
                order.next += 1
                written += 1
                while let next = order.ready.removeValue(forKey: order.next) {
                    next.withUnsafeBytes { write($0) }
                    order.next += 1
                    written += 1
                }
            }
            for _ in 0..<written { permits.signal() }
        }
    }

    /// A frame's input, let go of by the worker as it is compressed.
    private final class Frame: @unchecked Sendable {
        var bytes: FrameBytes
        init(_ bytes: FrameBytes) { self.bytes = bytes }
    }

    /// A frame's bytes in chunks of `chunkSize`: appending never copies what is there to grow a
    /// buffer, and the compressing worker frees each chunk once libzstd has taken it in (it keeps
    /// its own window copy), so a frame's input is not held twice.
    struct FrameBytes {
        static let chunkSize = 512 << 10
        var chunks: [[UInt8]] = []
        var count = 0
        var isEmpty: Bool { count == 0 }

        mutating func append(_ bytes: UnsafeRawBufferPointer) {
            var rest = bytes[...]
            while !rest.isEmpty {
                if chunks.isEmpty || chunks[chunks.count - 1].count == Self.chunkSize {
                    chunks.append([])
                    chunks[chunks.count - 1].reserveCapacity(Self.chunkSize)
                }
                let room = Self.chunkSize - chunks[chunks.count - 1].count
                let piece = rest.prefix(room)
                chunks[chunks.count - 1].append(contentsOf: piece)
                rest = rest.dropFirst(piece.count)
            }
            count += bytes.count
        }
    }
}
