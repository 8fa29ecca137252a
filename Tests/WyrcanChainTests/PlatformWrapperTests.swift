import Foundation
import Testing
import CZstd
@testable import WyrcanChain
import WyrcanHTTP

/// The thin wrappers over libcrypto, libcurl, libmicrohttpd and libarchive, each against a real peer.
@Suite struct CryptoTests {
    @Test func sha256Vectors() throws {
        #expect(try Digester.hash(.sha256, []).hexString == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(try Digester.hash(.sha256, Array("abc".utf8)).hexString == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let h = try Digester(.sha256)
        for chunk in ["a", "b", "c"] { h.update(Array(chunk.utf8)) }
        #expect(h.finalize().hexString == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(try Digester.hash(.md5, Array("abc".utf8)).hexString == "900150983cd24fb0d6963f7d28e17f72")
    }

    @Test func hmacSHA256RFC4231() throws {
        // RFC 4231 test case 2.
        let mac = try HMAC.sha256(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))
        #expect(mac.hexString == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }
}

@Suite struct DirectoryArchiverTests {
    /// An appended segment must not change the image's directories (the kernel applies a
    /// directory entry's mode to an existing directory, and replaces a symlink by it).
    @Test func directoriesTakeTheImageMetadataAndSymlinksAreLeftAlone() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wyrcan-overlay-\(getpid())").path
        try? FileManager.default.removeItem(atPath: dir)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for sub in ["root/tmp/cache", "root/var/lib/x", "root/new/dir"] {
            try FileManager.default.createDirectory(atPath: "\(dir)/\(sub)", withIntermediateDirectories: true)
        }
        try "data".write(toFile: "\(dir)/root/var/lib/x/file", atomically: true, encoding: .utf8)
        var tmp = ArchiveEntryInfo(path: "tmp", type: .directory, permissions: 0o1777)
        tmp.mtime = 1_600_000_000
        var varLink = ArchiveEntryInfo(path: "var", type: .symlink, permissions: 0o777)
        varLink.symlinkTarget = "srv/var"
        try DirectoryArchiver.archive(root: dir + "/root", to: dir + "/segment", compression: .none, over: ["tmp": tmp, "var": varLink])
        let reader = try ArchiveReader(path: dir + "/segment")
        var seen: [String: ArchiveEntryInfo] = [:]
        while let entry = try reader.next() { seen[entry.path] = entry }
        #expect(seen["tmp"]?.permissions == 0o1777 && seen["tmp"]?.mtime == 1_600_000_000)
        #expect(seen["var"] == nil)
        #expect(seen["var/lib/x/file"]?.type == .regular)
        #expect(seen["new"]?.type == .directory && seen["new/dir"] != nil)
    }
}

@Suite struct PageBufferTests {
    /// Fills of every size land in order; emptying (and handing pages back past a limit) leaves
    /// the buffer ready for a next fill with the same contents as a new buffer would hold.
    @Test func refillsKeepTheBytesInOrder() throws {
        let buffer = try PageBuffer(capacity: 3 << 20)
        #expect(buffer.capacity >= 3 << 20)
        for (round, lengths) in [[0, 1, 100, 4095, 4097], [1 << 20, 2 << 20 - 5], [3 << 20]].enumerated() {
            var expected: [UInt8] = []
            for length in lengths {
                let piece = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ expected.count &+ round) }
                piece.withUnsafeBytes { buffer.append($0) }
                expected += piece
            }
            #expect(buffer.count == expected.count)
            #expect(buffer.room == buffer.capacity - expected.count)
            #expect(Array(buffer.bytes) == expected)
            if round == 1 { buffer.removeAll() } else { buffer.release(above: 4096) }
            #expect(buffer.isEmpty && buffer.bytes.isEmpty)
        }
    }
}

@Suite struct ZstdFrameEncoderTests {
    /// One context, kept across frames, writes one complete frame per call (its size in the
    /// frame header): an empty one, a tiny one, an incompressible one past zstd's 2 MiB window
    /// and a compressible one after it; together they decompress (as zstd -d reads a run of
    /// frames) to the inputs in order.
    @Test func framesFromOneContextDecompressToTheirInputs() throws {
        let dir = try freshTemporaryDirectory("wyrcan-zstd-frames")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var generator = SystemRandomNumberGenerator()
        let inputs: [[UInt8]] = [
            [],
            [42],
            (0..<((3 << 20) / 8)).map { _ in generator.next() as UInt64 }.withUnsafeBytes { Array($0) },
            repeated(Array("a compressible frame; ".utf8), count: 1 << 20),
        ]
        let encoder = try ZstdFrameEncoder(level: nil)
        #expect(encoder.readsInPlace)  // (Debian's libzstd takes ZSTD_c_stableInBuffer: no window copy)
        var output: [UInt8] = []
        var frameSizes: [Int] = []
        for input in inputs {
            let before = output.count
            try input.withUnsafeBytes { bytes in try encoder.compress(bytes) { output.append(contentsOf: $0) } }
            frameSizes.append(output.count - before)
        }
        // Each call wrote exactly one frame that records its content size.
        var offset = 0
        for (input, size) in zip(inputs, frameSizes) {
            output[offset...].withUnsafeBytes { frame in
                let compressed = ZSTD_findFrameCompressedSize(frame.baseAddress, frame.count)
                #expect(ZSTD_isError(compressed) == 0 && compressed == size)
                #expect(ZSTD_getFrameContentSize(frame.baseAddress, frame.count) == UInt64(input.count))
            }
            offset += size
        }
        #expect(frameSizes[3] < inputs[3].count / 10)
        try Data(output).write(to: URL(fileURLWithPath: dir + "/frames.zst"))
        #expect(try ArchiveReader.decompressedBytes(of: dir + "/frames.zst") == Array(inputs.joined()))
    }
}

@Suite struct FrameCompressorTests {
    /// Members of every size, one past the 8 MiB frame limit (streamed, in one frame with the
    /// half-filled frame before it), compressible and not, through reused slots: the frames
    /// decompress to the stream in order, with zstd and with gzip, and zstd writes one frame
    /// per cut.
    @Test(arguments: [CpioWriter.Compression.zstd, .gzip])
    func framesDecompressToTheStreamInOrder(compression: CpioWriter.Compression) throws {
        let dir = try freshTemporaryDirectory("wyrcan-frames-\(compression)")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var generator = SystemRandomNumberGenerator()
        var sizes = (0..<40).map { i in [0, 1, 4096, 700_000, 1 << 20, 2 << 20, 3 << 20 + 5][i % 7] }
        sizes.insert(9 << 20, at: 23)
        // Incompressible members are slices of one random pool (at other offsets each time).
        let pool: [UInt8] = (0..<((10 << 20) / 8)).map { _ in generator.next() as UInt64 }.withUnsafeBytes { Array($0) }
        let compressor = try FrameCompressor(path: dir + "/out", compression: compression, level: nil, workers: 2)
        var expected: [UInt8] = []
        for (i, size) in sizes.enumerated() {
            let member: [UInt8] = i % 3 == 0
                ? Array(pool[(i * 4099) % (1 << 20)..<(i * 4099) % (1 << 20) + size])
                : repeated(Array("member \(i) of the cpio stream; ".utf8), count: size)
            // (In pieces, as libarchive hands a member over.)
            var offset = 0
            while offset < member.count {
                let piece = min(member.count - offset, 65_536 + i)
                try member[offset..<offset + piece].withUnsafeBytes { try compressor.submit($0) }
                offset += piece
            }
            expected += member
            try compressor.boundary()
        }
        try compressor.finish()
        #expect(try ArchiveReader.decompressedBytes(of: dir + "/out") == expected)
        if compression == .zstd {
            let file = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/out")))
            var frames = 0
            var offset = 0
            while offset < file.count {
                let size = file[offset...].withUnsafeBytes { ZSTD_findFrameCompressedSize($0.baseAddress, $0.count) }
                try #require(ZSTD_isError(size) == 0)
                frames += 1
                offset += size
            }
            // Each run of 7 sizes (≈ 6.7 MiB) is cut twice (past 2 MiB, then after the 3 MiB
            // member), and the 9 MiB member streams in one frame with what was being filled.
            #expect(frames >= 12)
        }
    }

    /// Given up midway, with frames in flight: `finish` returns (with the reason) instead of
    /// waiting for permits that never come back, and later bytes are refused.
    @Test func abandonedWithFramesInFlightFinishes() throws {
        let dir = try freshTemporaryDirectory("wyrcan-frames-abandon")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let compressor = try FrameCompressor(path: dir + "/out", compression: .zstd, level: 5, workers: 2)
        let member = [UInt8](repeating: 7, count: 3 << 20)
        for _ in 0..<3 {
            try member.withUnsafeBytes { try compressor.submit($0) }
            try compressor.boundary()
        }
        try member.withUnsafeBytes { try compressor.submit($0) }
        compressor.abandon()
        #expect(throws: ArchiveError.self) { try member.withUnsafeBytes { try compressor.submit($0) } }
        #expect(throws: ArchiveError.self) { try compressor.finish() }
    }

    /// A level outside libzstd's range is refused, as libarchive's filter refuses it, rather
    /// than clamped.
    @Test func aLevelOutsideZstdsRangeIsRefused() {
        #expect(throws: ArchiveError.self) { try ZstdFrameEncoder(level: 23) }
        #expect(throws: ArchiveError.self) { try FrameCompressor(path: "/dev/null", compression: .zstd, level: Int(Int32.max) + 1, workers: 2) }
    }
}
