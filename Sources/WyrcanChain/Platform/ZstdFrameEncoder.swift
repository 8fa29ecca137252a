import CZstd

/// One libzstd compression context, kept across frames: each `compress` call writes one
/// complete zstd frame of the bytes it is given.
///
/// Why not libarchive's zstd filter for every frame (as `RawCompressedWriter` does): it creates
/// a new context per frame, so the context's few MB are mapped, faulted in and unmapped again
/// for every 2 MiB of initrd, and the input is copied into the context's window first. Here the
/// context's memory stays mapped, and the input is read where it lies (`ZSTD_c_stableInBuffer`:
/// the whole frame is in one buffer before compression starts), so zstd needs no window buffer.
final class ZstdFrameEncoder {
    private let context: OpaquePointer
    /// The output of one `ZSTD_compressStream2` call, handed on before the next.
    private var output: [UInt8]
    /// Whether libzstd took `ZSTD_c_stableInBuffer` (otherwise it copies the input, as usual).
    let readsInPlace: Bool

    /// `level`: libzstd's range, 1–22 and its negative fast levels (nil: its default, 3, which
    /// libarchive's filter uses too).
    init(level: Int?) throws(ArchiveError) {
        let level = level ?? Int(ZSTD_CLEVEL_DEFAULT)
        // (libzstd would clamp a level past its range silently; libarchive's filter refuses it.)
        guard (Int(ZSTD_minCLevel())...Int(ZSTD_maxCLevel())).contains(level) else {
            throw ArchiveError(operation: "zstd", message: "compression level \(level) is outside \(ZSTD_minCLevel())–\(ZSTD_maxCLevel())")
        }
        guard let context = ZSTD_createCCtx() else {
            throw ArchiveError(operation: "zstd", message: "out of memory for a compression context")
        }
        self.context = context
        output = [UInt8](repeating: 0, count: ZSTD_CStreamOutSize())
        let chosen = ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, Int32(level))
        if ZSTD_isError(chosen) != 0 {
            ZSTD_freeCCtx(context)
            throw Self.error(chosen, "compression level \(level)")
        }
        readsInPlace = ZSTD_isError(ZSTD_CCtx_setParameter(context, ZSTD_cParameter(rawValue: UInt32(wyr_zstd_stable_in_buffer_param())), 1)) == 0
    }

    deinit { ZSTD_freeCCtx(context) }

    /// `input` as one zstd frame (its size recorded in the frame header), handed to `sink` in
    /// pieces of up to `ZSTD_CStreamOutSize()` bytes as they are produced. `input` must not
    /// change until this returns.
    func compress(_ input: UnsafeRawBufferPointer, to sink: (UnsafeRawBufferPointer) -> Void) throws(ArchiveError) {
        // (A frame left unfinished by an error before is dropped here.)
        _ = ZSTD_CCtx_reset(context, ZSTD_reset_session_only)
        let pledged = ZSTD_CCtx_setPledgedSrcSize(context, UInt64(input.count))
        if ZSTD_isError(pledged) != 0 { throw Self.error(pledged, "frame size") }
        var source = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        let capacity = output.count
        var remaining = 0
        repeat {
            let (result, produced) = output.withUnsafeMutableBytes { out in
                var target = ZSTD_outBuffer(dst: out.baseAddress, size: capacity, pos: 0)
                let result = ZSTD_compressStream2(context, &target, &source, ZSTD_e_end)
                return (result, target.pos)
            }
            if ZSTD_isError(result) != 0 { throw Self.error(result, "compress") }
            remaining = result
            if produced > 0 { output.withUnsafeBytes { sink(UnsafeRawBufferPointer(rebasing: $0[..<produced])) } }
        } while remaining > 0
    }

    private static func error(_ code: Int, _ operation: String) -> ArchiveError {
        ArchiveError(operation: "zstd \(operation)", message: String(cString: ZSTD_getErrorName(code)))
    }
}
