import Foundation
import Testing
@testable import WyrcanChain

/// Gzip layers inflate with ISA-L (loaded at run time) or zlib: both give exactly what
/// `gzip -dc` gives, read every member, check each member's CRC, and refuse a truncated stream;
/// a stream ISA-L refuses part-way is inflated again by zlib without repeating a byte.
@Suite struct GzipInflaterTests {
    /// Two gzip members (as `cat a.gz b.gz` makes), each 1.5 MB of mixed text and random data.
    static func fixture() throws -> (dir: String, gz: String, plain: [UInt8]) {
        let dir = try FileSystem.temporaryDirectory(prefix: "gzip-test")
        var plain: [UInt8] = []
        var generator = SystemRandomNumberGenerator()
        for member in 0..<2 {
            var part = Array(String(repeating: "member \(member) wyrcan layer text\n", count: 20_000).utf8)
            part += (0..<700_000).map { _ in UInt8.random(in: 0...255, using: &generator) }
            try Data(part).write(to: URL(fileURLWithPath: "\(dir)/part\(member)"))
            plain += part
        }
        let r = try shell("cd '\(dir)' && gzip -c part0 > part0.gz && gzip -9c part1 > part1.gz && cat part0.gz part1.gz > layer.gz")
        #expect(r == 0)
        return (dir, dir + "/layer.gz", plain)
    }

    static func shell(_ command: String) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", command]
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }

    static func inflate(_ inflater: GzipInflater) throws -> [UInt8] {
        var out: [UInt8] = []
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 100_000, alignment: 16)
        defer { buffer.deallocate() }
        while case let n = try inflater.read(into: buffer), n > 0 { out += buffer[0..<n] }
        return out
    }

    @Test(arguments: [GzipEngine.isal, .zlib])
    func everyMemberAsGzipReadsIt(engine: GzipEngine) throws {
        if engine == .isal { try #require(IsalLibrary.functions != nil, "libisal.so.2 (libisal2) is not installed") }
        let (dir, gz, plain) = try Self.fixture()
        defer { FileSystem.removeTree(dir) }
        #expect(try Self.inflate(GzipInflater(path: gz, engine: engine)) == plain)
        // Bytes after the last member that do not start another one end the stream.
        #expect(try Self.shell("printf 'trailing junk' >> '\(gz)'") == 0)
        #expect(try Self.inflate(GzipInflater(path: gz, engine: engine)) == plain)
    }

    @Test(arguments: [GzipEngine.isal, .zlib])
    func truncatedOrCorruptStreamsAreRefused(engine: GzipEngine) throws {
        let (dir, gz, _) = try Self.fixture()
        defer { FileSystem.removeTree(dir) }
        let bytes = try FileSystem.readFile(gz)
        try Data(bytes.prefix(bytes.count - 100)).write(to: URL(fileURLWithPath: dir + "/truncated.gz"))
        #expect(throws: ArchiveError.self) { try Self.inflate(GzipInflater(path: dir + "/truncated.gz", engine: engine)) }
        // The first member's CRC-32 (the first 4 bytes of its 8-byte trailer) changed.
        var corrupt = bytes
        corrupt[try FileSystem.readFile(dir + "/part0.gz").count - 8] ^= 0xFF
        try Data(corrupt).write(to: URL(fileURLWithPath: dir + "/crc.gz"))
        #expect(throws: ArchiveError.self) { try Self.inflate(GzipInflater(path: dir + "/crc.gz", engine: engine)) }
    }

    /// A decoder that gives up after some output: zlib takes over from the start and the bytes
    /// already delivered are not delivered again.
    final class FailingDecoder: GzipDecoder {
        let inner: ZlibDecoder
        var produced = 0
        init() throws { inner = try ZlibDecoder() }
        func resetMember() { inner.resetMember() }
        func decode(_ input: UnsafeRawBufferPointer, _ output: UnsafeMutableRawBufferPointer) throws(GzipDecoderError) -> GzipStep {
            if produced > 1_800_000 { throw GzipDecoderError(message: "test: gave up") }
            let step = try inner.decode(input, output)
            produced += step.produced
            return step
        }
    }

    @Test func aFailedDecoderIsReplacedByZlibWithoutRepeats() throws {
        let (dir, gz, plain) = try Self.fixture()
        defer { FileSystem.removeTree(dir) }
        #expect(try Self.inflate(GzipInflater(path: gz, decoder: FailingDecoder(), mayFallBack: true)) == plain)
        #expect(throws: ArchiveError.self) { try Self.inflate(GzipInflater(path: gz, decoder: FailingDecoder(), mayFallBack: false)) }
    }

    /// A gzip layer read by ArchiveReader (streaming) and staged to a tar (`decompress`) gives
    /// the same members with either engine.
    @Test func layersReadTheSameThroughTheArchiveReader() throws {
        let dir = try FileSystem.temporaryDirectory(prefix: "gzip-layer")
        defer { FileSystem.removeTree(dir) }
        #expect(try Self.shell("cd '\(dir)' && mkdir -p root/etc && echo hi > root/etc/motd && head -c 300000 /dev/urandom > root/blob && tar -C root -cf - . | gzip > layer.tgz") == 0)
        try ArchiveReader.decompress(layer: dir + "/layer.tgz", to: dir + "/layer.tar")
        #expect(try Self.shell("cd '\(dir)' && gzip -dc layer.tgz | cmp -n $(gzip -dc layer.tgz | wc -c) - layer.tar") == 0)
        let reader = try ArchiveReader(layer: dir + "/layer.tgz")
        var paths: [String] = []
        while let info = try reader.next() { paths.append(info.path) }
        #expect(Set(paths) == Set(["./", "./etc/", "./etc/motd", "./blob"]), "\(paths)")
    }
}
