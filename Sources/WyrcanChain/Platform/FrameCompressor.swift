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
///
/// Each frame in flight has a `Slot` of memory that is reused frame after frame (its input, its
/// output while older frames are still compressing, and for zstd a libzstd context): mapping and
/// faulting in fresh buffers for every 2 MiB frame cost ≈ 9 % of the conversion's CPU time
/// (300 000 page faults for a 500 MB initrd), and more threads fighting over the address space.
final class FrameCompressor: StreamCompressor, @unchecked Sendable {
    /// A frame is cut at the first member boundary past this size.
    static let frameTarget = 2 << 20
    /// A member that would grow the frame being filled past this is compressed as it arrives, on
    /// the caller's thread, in one frame with what that frame already held, instead of being
    /// held in memory.
    static let frameLimit = 8 << 20
    /// After a frame larger than this, its slot hands the pages past it back, so that a few
    /// large frames do not leave ≈ 8 MiB resident in every slot.
    static let residentLimit = frameTarget + (1 << 20)

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
    /// Slots not in use: one per permit, so a permit always finds one (a slot goes back here
    /// before its permit is returned).
    private let freeSlots: Locked<[Slot]>
    /// The frame whose output goes to the file now, and compressed frames that wait for the ones
    /// before them (their output in their slot); the worker that completes the frame in line
    /// writes the run after it. Workers never wait for each other's compression, only for this
    /// lock.
    private struct Order {
        var next = 0
        var ready: [Int: Slot] = [:]
    }
    private let order = Locked(Order())
    /// The first failure (its own lock: the caller checks it often, workers write under `order`).
    private let failed = Locked<ArchiveError?>(nil)
    /// Frames handed out so far (the caller's thread only).
    private var sequence = 0
    /// The slot of the frame being filled (while the caller holds its permit).
    private var current: Slot?
    /// The frame being compressed on the caller's thread (a member past `frameLimit`).
    private var streaming: RawCompressedWriter?
    private var finished = false

    var failure: ArchiveError? { failed.withLock { $0 } }

    private func record(_ error: ArchiveError) {
        failed.withLock { if $0 == nil { $0 = error } }
    }

    init(path: String, compression: CpioWriter.Compression, level: Int?, workers: Int) throws(ArchiveError) {
        // More frames in flight than CPUs would hold their buffers without compressing faster.
        let workers = max(1, min(workers, LinuxSystem.processorCount))
        let slots = try (0..<workers).map { _ throws(ArchiveError) in try Slot(compression: compression, level: level) }
        do throws(FileError) { file = try FileHandleFD.create(path) } catch {
            throw ArchiveError(operation: "open \(path)", message: error.description)
        }
        self.compression = compression
        self.level = level
        self.workers = workers
        freeSlots = Locked(slots)
        permits = DispatchSemaphore(value: 0)
        for _ in 0..<workers { permits.signal() }  // (libdispatch traps on freeing a semaphore below its initial value)
    }

    /// Stops taking bytes: what follows is thrown away (the caller gave up on the output).
    func abandon() {
        record(ArchiveError(operation: "compress", message: "abandoned"))
    }

    func submit(_ bytes: UnsafeRawBufferPointer) throws(ArchiveError) {
        if let failure { throw failure }
        do throws(ArchiveError) {
            if streaming == nil && (current?.input.count ?? 0) + bytes.count > Self.frameLimit {
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
                if let slot = current {
                    current = nil
                    defer { giveBack(slot) }
                    try writer.write(slot.input.bytes)
                }
            }
            if let streaming {
                try streaming.write(bytes)
            } else if !bytes.isEmpty {
                if holding == 0 {
                    permits.wait()
                    holding = 1
                }
                if current == nil { current = freeSlots.withLock { $0.popLast() } }
                current!.input.append(bytes)
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
        } else if let current, current.input.count >= Self.frameTarget {
            dispatchCurrent()
        }
        if let failure { throw failure }
    }

    /// Compresses and writes the rest and waits for every frame (the file closes with the
    /// compressor).
    func finish() throws(ArchiveError) {
        guard !finished else { return }
        finished = true
        var error: ArchiveError? = nil
        if let streaming {
            // (Every frame before it was written when it started.)
            self.streaming = nil
            do throws(ArchiveError) { try streaming.close() } catch let e { error = e }
        } else {
            if current != nil { dispatchCurrent() }
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
        if let slot = current {
            current = nil
            giveBack(slot)
        }
        for _ in 0..<holding { permits.signal() }
        holding = 0
    }

    /// Empties a slot and puts it back in `freeSlots` (its permit is returned after).
    private func giveBack(_ slot: Slot) {
        slot.input.release(above: Self.residentLimit)
        slot.pending.release(above: 0)
        freeSlots.withLock { $0.append(slot) }
    }

    private func dispatchCurrent() {
        guard let slot = current else { return }
        current = nil
        let number = sequence
        sequence += 1
        holding = 0  // (the frame's permit goes with it, back when it is written)
        queue.async { [self] in
            // The frame's output goes straight to the file while every frame before it is
            // written (the usual case for the oldest frame in flight); until then it waits in
            // its slot.
            func write(_ bytes: UnsafeRawBufferPointer) {
                guard failure == nil, !bytes.isEmpty else { return }
                do throws(FileError) { try file.write(bytes) } catch {
                    record(ArchiveError(operation: "write", message: error.description))
                }
            }
            func writePending(_ slot: Slot) {
                write(slot.pending.bytes)
                slot.pending.removeAll()
            }
            let emit = { (bytes: UnsafeRawBufferPointer) in
                self.order.withLock { order in
                    if order.next == number {
                        writePending(slot)
                        write(bytes)
                    } else {
                        slot.pending.append(bytes)
                    }
                }
            }
            if failure == nil {
                do throws(ArchiveError) {
                    if let zstd = slot.zstd {
                        try zstd.compress(slot.input.bytes, to: emit)
                    } else {
                        try RawCompressedWriter.compress(slot.input.bytes, compression: compression, level: level, to: emit)
                    }
                } catch { record(error) }
            }
            var written: [Slot] = []
            order.withLock { order in
                guard order.next == number else {
                    order.ready[number] = slot
                    return
                }
                writePending(slot)
                order.next += 1
                written.append(slot)
                while let next = order.ready.removeValue(forKey: order.next) {
                    writePending(next)
                    order.next += 1
                    written.append(next)
                }
            }
            for slot in written { giveBack(slot) }
            for _ in written { permits.signal() }
        }
    }

    /// The memory of one frame in flight, reused frame after frame.
    final class Slot: @unchecked Sendable {
        /// The frame's cpio bytes, filled by the caller.
        let input: PageBuffer
        /// Compressed output held while an older frame is still being compressed.
        let pending: PageBuffer
        /// zstd: this slot's libzstd context (nil for gzip, which goes through libarchive).
        let zstd: ZstdFrameEncoder?

        init(compression: CpioWriter.Compression, level: Int?) throws(ArchiveError) {
            input = try PageBuffer(capacity: FrameCompressor.frameLimit)
            // (More than either codec's bound for incompressible input of `frameLimit` bytes.)
            pending = try PageBuffer(capacity: FrameCompressor.frameLimit + FrameCompressor.frameLimit / 64 + (64 << 10))
            zstd = compression == .zstd ? try ZstdFrameEncoder(level: level) : nil
        }
    }
}
