import CInflate
#if canImport(Glibc)
import Glibc
#endif

/// Which library inflates gzip layers.
public enum GzipEngine: String, Sendable {
    /// Intel's ISA-L (igzip): faster than zlib's inflate (optimized for x86-64 and arm64).
    case isal
    case zlib

    /// ISA-L when `libisal.so.2` loads, else zlib; `WYRCAN_GZIP=zlib` chooses zlib (to compare,
    /// or to rule ISA-L out).
    public static let preferred: GzipEngine = {
        if let chosen = getenv("WYRCAN_GZIP"), String(cString: chosen) == "zlib" { return .zlib }
        return IsalLibrary.functions != nil ? .isal : .zlib
    }()
}

/// The decompressed bytes of a gzip file, every member in turn (as `gzip -d` reads them; data
/// after the last member that is not another member ends the stream, as in libarchive's gzip
/// reader), chunk by chunk. Each member's CRC-32 and length are checked. If ISA-L refuses a
/// stream, zlib decodes it again from the start and skips what was already delivered: only a
/// stream that neither accepts is an error.
final class GzipInflater {
    private let path: String
    private let fd: Int32
    private var decoder: any GzipDecoder
    private var input = [UInt8](repeating: 0, count: 1 << 20)
    private var start = 0, end = 0
    private var endOfFile = false
    /// Between two members: the next bytes decide whether another one follows.
    private var atMemberEnd = false
    private var finished = false
    /// Bytes delivered so far, and (after a fallback) how many of zlib's to drop again.
    private var delivered: Int64 = 0
    private var skip: Int64 = 0

    /// Whether a failure of `decoder` means zlib from the start (it is not zlib already).
    private var mayFallBack: Bool

    convenience init(path: String, engine: GzipEngine = .preferred) throws(ArchiveError) {
        let decoder: any GzipDecoder = try engine == .isal && IsalLibrary.functions != nil ? IsalDecoder() : ZlibDecoder()
        try self.init(path: path, decoder: decoder, mayFallBack: decoder is IsalDecoder)
    }

    /// (Tests give a decoder that fails on purpose.)
    init(path: String, decoder: any GzipDecoder, mayFallBack: Bool) throws(ArchiveError) {
        self.path = path
        self.decoder = decoder
        self.mayFallBack = mayFallBack
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ArchiveError(operation: "open \(path)", message: String(cString: strerror(errno))) }
    }

    deinit { close(fd) }

    /// Fills `buffer` with the next decompressed bytes; 0 at the end of the last member.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(ArchiveError) -> Int {
        while !finished {
            if start == end && !endOfFile { try fill() }
            if atMemberEnd {
                guard try anotherMemberFollows() else { finished = true; break }
                decoder.resetMember()
                atMemberEnd = false
            }
            let (decoder, start, end) = (self.decoder, self.start, self.end)
            let result = input.withUnsafeBytes { raw in
                Result { () throws(GzipDecoderError) in try decoder.decode(UnsafeRawBufferPointer(rebasing: raw[start..<end]), buffer) }
            }
            let step: GzipStep
            switch result {
            case .success(let s): step = s
            case .failure(let error):
                try fallBack(after: error)
                continue
            }
            self.start += step.consumed
            atMemberEnd = step.memberEnded
            if step.consumed == 0 && step.produced == 0 && !step.memberEnded {
                // Stuck: the decoder needs more input than there is.
                guard !endOfFile, self.end < input.count else {
                    throw ArchiveError(operation: "inflate \(path)", message: "the gzip stream is truncated")
                }
                try fill()
                continue
            }
            if let n = deliver(step.produced, in: buffer) { return n }
        }
        return 0
    }

    /// The part of `produced` bytes not skipped, moved to the buffer's start; nil when all were.
    private func deliver(_ produced: Int, in buffer: UnsafeMutableRawBufferPointer) -> Int? {
        guard produced > 0 else { return nil }
        let dropped = Int(min(skip, Int64(produced)))
        skip -= Int64(dropped)
        guard produced > dropped else { return nil }
        if dropped > 0, let base = buffer.baseAddress { memmove(base, base + dropped, produced - dropped) }
        delivered += Int64(produced - dropped)
        return produced - dropped
    }

    /// ISA-L refused the stream: zlib decodes it from the start, dropping what was delivered.
    private func fallBack(after error: GzipDecoderError) throws(ArchiveError) {
        guard mayFallBack else { throw ArchiveError(operation: "inflate \(path)", message: error.message) }
        decoder = try ZlibDecoder()
        mayFallBack = false
        guard lseek(fd, 0, SEEK_SET) == 0 else { throw ArchiveError(operation: "inflate \(path)", message: String(cString: strerror(errno))) }
        (start, end, endOfFile, atMemberEnd, skip) = (0, 0, false, false, delivered)
    }

    /// Whether the bytes after a member start another (gzip's magic 1f 8b).
    private func anotherMemberFollows() throws(ArchiveError) -> Bool {
        while end - start < 2 && !endOfFile { try fill() }
        return end - start >= 2 && input[start] == 0x1f && input[start + 1] == 0x8b
    }

    /// Reads more of the file after what is left unread (moved to the front).
    private func fill() throws(ArchiveError) {
        if start > 0 {
            input.withUnsafeMutableBytes { b in _ = memmove(b.baseAddress!, b.baseAddress! + start, end - start) }
            (start, end) = (0, end - start)
        }
        let n = input.withUnsafeMutableBytes { b in Glibc.read(fd, b.baseAddress! + end, b.count - end) }
        if n < 0 { throw ArchiveError(operation: "read \(path)", message: String(cString: strerror(errno))) }
        if n == 0 { endOfFile = true }
        end += n
    }
}

/// One call of a decoder: input bytes used, output bytes made, and whether a member ended.
struct GzipStep {
    var consumed: Int
    var produced: Int
    var memberEnded: Bool
}

struct GzipDecoderError: Error {
    var message: String
}

protocol GzipDecoder: AnyObject {
    func decode(_ input: UnsafeRawBufferPointer, _ output: UnsafeMutableRawBufferPointer) throws(GzipDecoderError) -> GzipStep
    /// Ready for the next member (same settings).
    func resetMember()
}

/// libisal.so.2, loaded at run time so that its absence means zlib, not a binary that cannot start.
enum IsalLibrary {
    typealias StateFunction = @convention(c) (UnsafeMutablePointer<inflate_state>?) -> Void
    typealias InflateFunction = @convention(c) (UnsafeMutablePointer<inflate_state>?) -> Int32

    struct Functions: @unchecked Sendable {
        var initialize: StateFunction
        var reset: StateFunction
        var inflate: InflateFunction
    }

    static let functions: Functions? = {
        guard let handle = dlopen("libisal.so.2", RTLD_NOW | RTLD_LOCAL),
              let initialize = dlsym(handle, "isal_inflate_init"), let reset = dlsym(handle, "isal_inflate_reset"),
              let inflate = dlsym(handle, "isal_inflate")
        else { return nil }
        return Functions(initialize: unsafeBitCast(initialize, to: StateFunction.self), reset: unsafeBitCast(reset, to: StateFunction.self),
                         inflate: unsafeBitCast(inflate, to: InflateFunction.self))
    }()
}

final class IsalDecoder: GzipDecoder {
    private let state = UnsafeMutablePointer<inflate_state>.allocate(capacity: 1)
    private let library = IsalLibrary.functions!

    init() {
        library.initialize(state)
        state.pointee.crc_flag = UInt32(ISAL_GZIP)
    }

    deinit { state.deallocate() }

    func resetMember() {
        library.reset(state)
        state.pointee.crc_flag = UInt32(ISAL_GZIP)
    }

    func decode(_ input: UnsafeRawBufferPointer, _ output: UnsafeMutableRawBufferPointer) throws(GzipDecoderError) -> GzipStep {
        state.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: UInt8.self))
        state.pointee.avail_in = UInt32(input.count)
        state.pointee.next_out = output.baseAddress?.assumingMemoryBound(to: UInt8.self)
        state.pointee.avail_out = UInt32(output.count)
        let status = library.inflate(state)
        guard status >= 0 else { throw GzipDecoderError(message: "ISA-L: error \(status)") }
        return GzipStep(consumed: input.count - Int(state.pointee.avail_in), produced: output.count - Int(state.pointee.avail_out),
                        memberEnded: state.pointee.block_state == ISAL_BLOCK_FINISH)
    }
}

final class ZlibDecoder: GzipDecoder {
    // (zlib keeps a pointer back to the stream: it must not move.)
    private let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)

    init() throws(ArchiveError) {
        stream.initialize(to: z_stream())
        guard wyr_zlib_inflate_init_gzip(stream) == Z_OK else {
            stream.deallocate()
            throw ArchiveError(operation: "inflateInit2", message: "out of memory")
        }
    }

    deinit {
        inflateEnd(stream)
        stream.deallocate()
    }

    func resetMember() { inflateReset(stream) }

    func decode(_ input: UnsafeRawBufferPointer, _ output: UnsafeMutableRawBufferPointer) throws(GzipDecoderError) -> GzipStep {
        stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: UInt8.self))
        stream.pointee.avail_in = UInt32(input.count)
        stream.pointee.next_out = output.baseAddress?.assumingMemoryBound(to: UInt8.self)
        stream.pointee.avail_out = UInt32(output.count)
        let status = inflate(stream, Z_NO_FLUSH)
        // (Z_BUF_ERROR: no progress possible with this input and output, not an error.)
        guard status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR else {
            let reason = stream.pointee.msg.map { String(cString: $0) } ?? "error \(status)"
            throw GzipDecoderError(message: "zlib: \(reason)")
        }
        return GzipStep(consumed: input.count - Int(stream.pointee.avail_in), produced: output.count - Int(stream.pointee.avail_out),
                        memberEnded: status == Z_STREAM_END)
    }
}
