import Foundation
import Testing
@testable import WyrcanChain
import WyrcanTestSupport

/// Layers made to hurt: each must be refused with one line (or converted), never crash, hang or
/// take memory without bound. The reproducers are generated here.
@Suite struct HostileLayerTests {
    /// `tar` plus a kernel and an init, so that a conversion gets past the boot checks.
    static func bootable(_ tar: TestTar) -> TestTar {
        var tar = tar
        tar.add("boot/wyrcan.kernel", content: Array("kernel".utf8))
        tar.add("init", content: Array("#!/bin/sh\n".utf8), mode: 0o755)
        return tar
    }

    /// Converts the one-layer image `tar`; the error, or nil when it converted.
    static func convert(_ tar: TestTar, unpackedLimit: Int64? = nil, name: String = #function) throws -> ConversionError? {
        let dir = try freshTemporaryDirectory("wyrcan-hostile-\(name.prefix { $0.isLetter })")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(tar.archive).write(to: URL(fileURLWithPath: dir + "/layer.tar"))
        try FileManager.default.createDirectory(atPath: dir + "/out", withIntermediateDirectories: true)
        var builder = InitrdBuilder(compression: .none)
        builder.unpackedLimit = unpackedLimit.map { ($0, "allowed") }
        do {
            _ = try builder.build(layers: [dir + "/layer.tar"], outputDirectory: dir + "/out")
            return nil
        } catch {
            // Nothing is left behind on a refusal, and the message is one short line.
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/out").isEmpty)
            #expect(!error.description.contains("\n") && error.description.count < 600, "\(error.description.prefix(600))")
            return error
        }
    }

    static func path(components: Int) -> String { String(repeating: "a/", count: components) + "f" }

    /// ≈ 11 000 components (24 KB): past PATH_MAX, refused; it crashed the recursive tree.
    @Test func aPathLongerThanLinuxAllowsIsRefused() throws {
        var tar = TestTar()
        tar.add(Self.path(components: 11_000), content: [1])
        let error = try #require(try Self.convert(Self.bootable(tar)))
        #expect(error.description.contains("the path is longer than the 4095 bytes Linux allows"), "\(error)")
        guard case .beyondLimit = error else { Issue.record("\(error)"); return }
    }

    /// Deep but legal (2 000 components, ≈ 4 KB): converts.
    @Test func aDeepLegalPathConverts() throws {
        var tar = TestTar()
        tar.add(Self.path(components: 2_000), content: [1])
        #expect(try Self.convert(Self.bootable(tar)) == nil)
    }

    @Test func aNameLongerThanNameMaxIsRefused() throws {
        var tar = TestTar()
        tar.add("etc/" + String(repeating: "n", count: 300), content: [1])
        let error = try #require(try Self.convert(Self.bootable(tar)))
        #expect(error.description.contains("a name in it is longer than the 255 bytes"), "\(error)")
    }

    /// `s -> x/../x/../…` (50 000 components) with members below `s`: its target is past
    /// PATH_MAX, refused at once (it took over 60 s, the cost growing with the square of it).
    @Test func aSymlinkTargetLongerThanLinuxAllowsIsRefused() throws {
        var tar = TestTar()
        tar.add("x", kind: .directory, mode: 0o755)
        tar.add("s", kind: .symlink, linkTarget: String(repeating: "x/../", count: 25_000) + "x")
        for i in 0..<30 { tar.add("s/f\(i)", content: [1]) }
        let error = try #require(try Self.convert(Self.bootable(tar)))
        #expect(error.description.contains("its link target is longer than the 4095 bytes"), "\(error)")
    }

    /// The longest legal such symlink, 300 members below it, nested through a second symlink:
    /// converts, each member placed under `x` (its resolution is walked once, not per member).
    @Test func membersBelowAnExpensiveSymlinkAreCheap() throws {
        var tar = TestTar()
        tar.add("x", kind: .directory, mode: 0o755)
        tar.add("s", kind: .symlink, linkTarget: String(repeating: "x/../", count: 818) + "x")
        tar.add("t", kind: .symlink, linkTarget: "s/../s")
        for i in 0..<300 { tar.add("t/f\(i)", content: [1]) }
        #expect(try Self.convert(Self.bootable(tar)) == nil)
        var tree = RootfsTree()
        let dir = try freshTemporaryDirectory("wyrcan-hostile-tree")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(Self.bootable(tar).archive).write(to: URL(fileURLWithPath: dir + "/layer.tar"))
        try tree.apply(layer: 0, entries: LayerEntry.scan(path: dir + "/layer.tar", layer: 0))
        #expect(tree.nodes["x/f299"]?.info.type == .regular && tree.nodes["s"]?.info.type == .symlink)
    }

    /// 16 sparse members claiming 4 GiB each, one byte stored (a 20 KB layer): 64 GiB of zeros
    /// to unpack. Refused before anything is written.
    @Test func aSparseBombIsRefusedBeforeWriting() throws {
        var tar = TestTar()
        for i in 0..<16 { tar.addSparse("var/log/lastlog\(i)", realSize: 4_294_967_295, offset: 4_294_967_294, data: [1]) }
        let error = try #require(try Self.convert(Self.bootable(tar), unpackedLimit: 1 << 30))
        #expect(error.description.hasPrefix("the image unpacks to 64.0 GiB, more than the 1.0 GiB allowed"), "\(error)")
        // Sizes whose sum would overflow: refused, not a trap (as /init, a trap is a panic).
        var huge = TestTar()
        for i in 0..<2 { huge.addSparse("var/big\(i)", realSize: Int64.max, offset: 0, data: [1]) }
        let overflow = try #require(try Self.convert(Self.bootable(huge), unpackedLimit: 1 << 30))
        #expect(overflow.description.contains("past the 1 TiB a member may hold"), "\(overflow)")
        // (An honest sparse file within the limit is read with its holes as zeros.)
        var small = TestTar()
        small.addSparse("var/log/lastlog", realSize: 1 << 20, offset: 4096, data: [7])
        #expect(try Self.convert(Self.bootable(small), unpackedLimit: 1 << 30) == nil)
    }

    /// A total that saturated at `Int64.max` (some 840 000 members of 1 TiB) is named, not a trap.
    @Test func aSaturatedTotalIsNamedNotATrap() {
        let error = ConversionError.tooLargeUnpacked(bytes: Int64.max, limit: 1 << 30, source: "allowed")
        #expect(error.description.hasPrefix("the image unpacks to 8589934591.9 GiB, more than the 1.0 GiB allowed"), "\(error)")
    }

    /// `a\xff` and `a\xfe` would both become `a\u{FFFD}`, one file: refused, naming the bytes.
    @Test func namesThatAreNotUTF8AreRefusedNotMerged() throws {
        var tar = TestTar()
        tar.add(name: Array("a".utf8) + [0xFF], content: [1])
        tar.add(name: Array("a".utf8) + [0xFE], content: [2])
        let error = try #require(try Self.convert(Self.bootable(tar)))
        #expect(error.description.contains(#""a\xff" is not UTF-8"#), "\(error)")
    }
}

/// Local OCI layouts whose files are not what they claim: refused by type and size before any
/// read, so nothing blocks or fills memory.
@Suite struct HostileLayoutTests {
    static let digest = try! Digest(parsing: "sha256:" + String(repeating: "a", count: 64))

    static func layout(_ name: String, index: (String) throws -> Void) throws -> String {
        let dir = try freshTemporaryDirectory("wyrcan-hostile-layout-\(name)")
        try FileManager.default.createDirectory(atPath: dir + "/blobs/sha256", withIntermediateDirectories: true)
        try "{\"imageLayoutVersion\": \"1.0.0\"}".write(toFile: dir + "/oci-layout", atomically: true, encoding: .utf8)
        try index(dir)
        return dir
    }

    static func error(_ work: () throws -> Void) -> String? {
        do { try work() } catch { return "\(error)" }
        return nil
    }

    @Test func anIndexThatIsADeviceIsRefused() throws {
        let dir = try Self.layout("device") { try FileManager.default.createSymbolicLink(atPath: $0 + "/index.json", withDestinationPath: "/dev/zero") }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let message = Self.error { _ = try OCILayout(directory: dir, tag: nil).resolve(platform: .current) }
        #expect(message?.contains("index.json: not a regular file") == true, "\(message ?? "accepted")")
    }

    @Test func aBlobThatIsAFIFOOrADeviceIsRefusedNotHung() throws {
        let dir = try Self.layout("fifo") { _ in }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let blob = OCILayout(directory: dir, tag: nil).blobPath(Self.digest)
        #expect(mkfifo(blob, 0o644) == 0)
        let descriptor = Descriptor(mediaType: MediaType.ociLayerGzip, digest: Self.digest, size: 10)
        let fifo = Self.error { _ = try OCILayout(directory: dir, tag: nil).verifyBlob(descriptor) }
        #expect(fifo?.contains("is not a regular file") == true, "\(fifo ?? "accepted")")
        unlink(blob)
        try FileManager.default.createSymbolicLink(atPath: blob, withDestinationPath: "/dev/zero")
        let device = Self.error { _ = try OCILayout(directory: dir, tag: nil).readVerified(descriptor) }
        #expect(device?.contains("is not a regular file") == true, "\(device ?? "accepted")")
    }

    /// An image index whose entry for this platform is another index: said so, with its digest
    /// (it said "no image for platform linux/amd64 (available: linux/amd64)").
    @Test func aNestedIndexIsNamedAsSuch() throws {
        let inner = "{\"schemaVersion\": 2, \"manifests\": []}"
        let innerDigest = "sha256:" + (try Digester.hash(.sha256, Array(inner.utf8)).hexString)
        let outer = """
            {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json",
              "digest": "\(innerDigest)", "size": \(inner.utf8.count), "platform": {"os": "\(Platform.current.os)", "architecture": "\(Platform.current.architecture)"}}]}
            """
        let outerDigest = "sha256:" + (try Digester.hash(.sha256, Array(outer.utf8)).hexString)
        let dir = try Self.layout("nested") { dir in
            for (digest, text) in [(innerDigest, inner), (outerDigest, outer)] {
                try text.write(toFile: dir + "/blobs/sha256/" + digest.dropFirst(7), atomically: true, encoding: .utf8)
            }
            try """
                {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "\(outerDigest)", "size": \(outer.utf8.count)}]}
                """.write(toFile: dir + "/index.json", atomically: true, encoding: .utf8)
        }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let message = Self.error { _ = try OCILayout(directory: dir, tag: nil).resolve(platform: .current) }
        #expect(message?.contains("is itself an index (\(innerDigest)); nested indexes are not followed") == true, "\(message ?? "accepted")")
    }
}
