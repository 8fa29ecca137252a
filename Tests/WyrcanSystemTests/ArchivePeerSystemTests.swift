import Foundation
import Testing
@testable import WyrcanChain

/// The libarchive wrapper against the command-line tools that read and write the same formats:
/// the system's cpio, Python's tarfile, GNU tar (sparse members), zstd, xz and gzip.
@Suite struct ArchiveTests {
    @Test(arguments: CpioWriter.Compression.allCases)
    func cpioRoundTripAndSystemCpioAgrees(compression: CpioWriter.Compression) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wyrcan-cpio-\(getpid())-\(compression)")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("initrd").path

        let writer = try CpioWriter(path: path, compression: compression)
        try writer.writeHeader(ArchiveEntryInfo(path: "etc", type: .directory, permissions: 0o755))
        let data = Array("hello initramfs\n".utf8)
        var file = ArchiveEntryInfo(path: "etc/motd", type: .regular, permissions: 0o644, size: Int64(data.count))
        file.mtime = 1_700_000_000
        try writer.writeHeader(file)
        try data.withUnsafeBytes { try writer.write($0) }
        var link = ArchiveEntryInfo(path: "init", type: .symlink, permissions: 0o777)
        link.symlinkTarget = "sbin/init"
        try writer.writeHeader(link)
        // Non-ASCII names (as in ca-certificates) in the C locale this process runs in.
        let pem = Array("-----BEGIN CERTIFICATE-----\n".utf8)
        try writer.writeHeader(ArchiveEntryInfo(path: "etc/Főtanúsítvány.pem", type: .regular, permissions: 0o644, size: Int64(pem.count)))
        try pem.withUnsafeBytes { try writer.write($0) }
        var pemLink = ArchiveEntryInfo(path: "etc/ca-é.pem", type: .symlink, permissions: 0o777)
        pemLink.symlinkTarget = "Főtanúsítvány.pem"
        try writer.writeHeader(pemLink)
        var dev = ArchiveEntryInfo(path: "console", type: .characterDevice, permissions: 0o600)
        dev.deviceMajor = 5
        dev.deviceMinor = 1
        try writer.writeHeader(dev)
        try writer.close()

        let reader = try ArchiveReader(path: path)
        var seen: [String: ArchiveEntryInfo] = [:]
        var motd: [UInt8] = []
        while let entry = try reader.next() {
            seen[entry.path] = entry
            if entry.path == "etc/motd" { try reader.readData { motd += $0 } }
        }
        #expect(Set(seen.keys) == ["etc", "etc/motd", "init", "console", "etc/Főtanúsítvány.pem", "etc/ca-é.pem"])
        #expect(seen["etc/ca-é.pem"]?.symlinkTarget == "Főtanúsítvány.pem")
        #expect(motd == data)
        #expect(seen["etc/motd"]?.mtime == 1_700_000_000)
        #expect(seen["init"]?.symlinkTarget == "sbin/init")
        #expect(seen["console"]?.type == .characterDevice && seen["console"]?.deviceMajor == 5)

        // The system's cpio reads it too (decompressed by the matching tool).
        let decompress = ["zstd": "zstd -dc", "gzip": "gzip -dc", "none": "cat"][compression.rawValue]!
        let listing = try shell("\(decompress) '\(path)' | cpio -it --quiet")
        #expect(Set(listing.split(separator: "\n").map(String.init)) == ["etc", "etc/motd", "init", "console", "etc/Főtanúsítvány.pem", "etc/ca-é.pem"])
    }
}

@Suite struct TarNameTests {
    /// Layers written by Python (pax: UTF-8 names in extended headers) and GNU tar (raw bytes).
    @Test(arguments: ["pax", "gnu"])
    func nonASCIINamesAndLinkTargetsAreRead(format: String) throws {
        let dir = try Sys.tempDir("wyrcan-tar-\(format)")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let script = """
            import io, sys, tarfile
            with tarfile.open(sys.argv[1], "w", format=tarfile.\(format == "pax" ? "PAX_FORMAT" : "GNU_FORMAT"), encoding="utf-8") as t:
                data = b"pem"
                i = tarfile.TarInfo("etc/Főtanúsítvány.pem"); i.size = len(data); t.addfile(i, io.BytesIO(data))
                l = tarfile.TarInfo("etc/ca-é.pem"); l.type = tarfile.SYMTYPE; l.linkname = "Főtanúsítvány.pem"; t.addfile(l)
                h = tarfile.TarInfo("etc/hård"); h.type = tarfile.LNKTYPE; h.linkname = "etc/Főtanúsítvány.pem"; t.addfile(h)
            """
        try script.write(toFile: dir + "/make.py", atomically: true, encoding: .utf8)
        _ = try shell("python3 '\(dir)/make.py' '\(dir)/layer.tar'")
        let reader = try ArchiveReader(path: dir + "/layer.tar")
        var seen: [String: ArchiveEntryInfo] = [:]
        while let entry = try reader.next() { seen[entry.path] = entry }
        #expect(Set(seen.keys) == ["etc/Főtanúsítvány.pem", "etc/ca-é.pem", "etc/hård"])
        #expect(seen["etc/ca-é.pem"]?.symlinkTarget == "Főtanúsítvány.pem")
        #expect(seen["etc/hård"]?.hardlinkTarget == "etc/Főtanúsítvány.pem")
    }
}

/// Sparse members (GNU tar `--sparse`, in its own format and in pax's): the data is the whole
/// file, holes as zeros, and the size is the file's.
@Suite struct SparseTarTests {
    @Test(arguments: ["gnu", "posix"])
    func holesAreReadAsZeros(format: String) throws {
        let dir = try Sys.tempDir("wyrcan-sparse-\(format)")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A hole, data, a hole, data, and a hole at the end.
        _ = try shell("""
            cd '\(dir)' && printf x | dd of=lastlog bs=1 seek=1048576 conv=notrunc status=none &&
            printf end | dd of=lastlog bs=1 seek=3145728 conv=notrunc status=none && truncate -s 4194304 lastlog &&
            tar --sparse --format=\(format) -cf layer.tar lastlog
            """)
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/lastlog")))
        #expect(original.count == 4 << 20)
        // Stored sparse: the holes are not in the tar.
        let tarSize = try FileManager.default.attributesOfItem(atPath: dir + "/layer.tar")[.size] as? Int ?? .max
        #expect(tarSize < 64 << 10, "layer.tar is \(tarSize) bytes")
        let reader = try ArchiveReader(path: dir + "/layer.tar")
        let entry = try #require(try reader.next())
        #expect(entry.path == "lastlog" && entry.size == Int64(original.count))
        var data: [UInt8] = []
        try reader.readData { data.append(contentsOf: $0) }
        #expect(data.count == original.count && data == original)
    }
}

func shell(_ command: String) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/sh")
    p.arguments = ["-c", command]
    let out = Pipe()
    p.standardOutput = out
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}

/// Compressed files read whole (how the boot agent loads its `.ko.zst` modules), against the
/// zstd, xz and gzip command-line tools.
@Suite struct HardLinkSizeTests {
    /// A ustar hard link whose header gives a size with no data after it (GNU tar reads such an
    /// entry as a link of 0 bytes) is read as no bytes, not as that many zeros, and the member
    /// after it is intact.
    @Test func aHardLinkWithASizeInItsHeaderReadsNoData() throws {
        let dir = try Sys.tempDir("wyrcan-hardlink-size")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let script = """
            import io, sys, tarfile
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
                a = tarfile.TarInfo("a"); a.size = 5; t.addfile(a, io.BytesIO(b"hello"))
                b = tarfile.TarInfo("b"); b.type = tarfile.LNKTYPE; b.linkname = "a"
                header = bytearray(b.tobuf(format=tarfile.USTAR_FORMAT))
                header[124:136] = b"%011o\\0" % 4096            # size 4096, no data follows
                header[148:156] = b" " * 8
                header[148:156] = b"%06o\\0 " % sum(header[:512])  # checksum
                t.fileobj.write(bytes(header)); t.offset += 512
                c = tarfile.TarInfo("c"); c.size = 3; t.addfile(c, io.BytesIO(b"xyz"))
            open(sys.argv[1], "wb").write(buf.getvalue())
            """
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", "-c", script, dir + "/layer.tar"]
        try python.run()
        python.waitUntilExit()
        try #require(python.terminationStatus == 0)
        let reader = try ArchiveReader(layer: dir + "/layer.tar")
        var data: [String: [UInt8]] = [:]
        var links: [String: String] = [:]
        while let entry = try reader.next() {
            var bytes: [UInt8] = []
            try reader.readData { bytes.append(contentsOf: $0) }
            data[entry.path] = bytes
            links[entry.path] = entry.hardlinkTarget
        }
        #expect(data["a"] == Array("hello".utf8))
        #expect(links["b"] == "a")
        #expect(data["b"]?.count == 0)
        #expect(data["c"] == Array("xyz".utf8))
    }
}

@Suite struct DecompressedBytesTests {
    @Test(arguments: [("zstd", "zst"), ("xz", "xz"), ("gzip", "gz")])
    func readsWhatTheToolWrote(tool: String, suffix: String) throws {
        let dir = NSTemporaryDirectory() + "wyrcan-decompress-\(tool)-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var original: [UInt8] = []
        for i in 0..<300_000 { original.append(UInt8(truncatingIfNeeded: i * 7 + i / 251)) }
        try Data(original).write(to: URL(fileURLWithPath: dir + "/module.ko"))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [tool, "-q", dir + "/module.ko"]
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        #expect(try ArchiveReader.decompressedBytes(of: dir + "/module.ko.\(suffix)") == original)
        #expect(throws: ArchiveError.self) { try ArchiveReader.decompressedBytes(of: dir + "/missing.ko.zst") }
    }
}

/// Cache disks as e2fsprogs makes and reads them.
@Suite struct BlockDevicePeerSystemTests {
    /// Real filesystems made by e2fsprogs in image files: label and UUID as blkid reads them; a
    /// zeroed file is blank; one with anything in its first MiB is not, and holds no ext filesystem.
    @Test func readsTheSuperblock() throws {
        let dir = try FileSystem.temporaryDirectory()
        defer { FileSystem.removeTree(dir) }
        let image = dir + "/cache.img"
        try FileHandleFD.create(image).truncate(to: 16 << 20)
        #expect(try BlockDevice(path: image).isBlank())
        #expect(try BlockDevice(path: image).extFilesystem() == nil)
        _ = try shell("/sbin/mke2fs -q -F -t ext4 -L WYRCAN_CACHE '\(image)'")
        let fs = try #require(try BlockDevice(path: image).extFilesystem())
        #expect(fs.label == "WYRCAN_CACHE")
        #expect(fs.uuid == (try shell("/sbin/blkid -o value -s UUID '\(image)'")).trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(try !BlockDevice(path: image).isBlank())

        let other = dir + "/other.img"
        let file = try FileHandleFD.create(other)
        try file.truncate(to: 4 << 20)
        _ = lseek(file.fd, 4096, SEEK_SET)
        try file.write(Array("SWAPSPACE2".utf8))
        #expect(try !BlockDevice(path: other).isBlank())
        #expect(try BlockDevice(path: other).extFilesystem() == nil)

        // Zeros at the start but a backup GPT (or RAID superblock) at the end: not blank.
        let tail = dir + "/tail.img"
        let t = try FileHandleFD.create(tail)
        try t.truncate(to: 8 << 20)
        _ = lseek(t.fd, (8 << 20) - 512, SEEK_SET)
        try t.write(Array("EFI PART".utf8))
        #expect(try !BlockDevice(path: tail).isBlank())
    }
}
