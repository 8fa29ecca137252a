import Foundation
import Testing

/// `wyrcan convert` against real registries and tools: docker-registry (plain, TLS, Basic auth),
/// skopeo for pushing, umoci as the reference unpacker, and an unreliable registry for retries.
@Suite(.serialized) struct ConvertSystemTests {
    /// Three layers (gzip, zstd, none) exercising whiteouts, opaque dirs, hard links across layers,
    /// devices, fifos, owners, a symlinked kernel and init, and a replaced directory.
    static let multiLayer = """
        {"tag": "v1", "images": [{"layers": [
         {"compression": "gzip", "entries": [
           {"path": ".", "type": "dir", "mode": 448},
           {"path": "bin", "type": "dir"}, {"path": "bin/sh", "type": "file", "content": "#!shell\\n", "mode": 493, "mtime": 1600000000},
           {"path": "boot", "type": "dir"}, {"path": "boot/vmlinuz-1", "type": "random", "size": 400000, "seed": 5},
           {"path": "boot/wyrcan.kernel", "type": "symlink", "target": "vmlinuz-1"},
           {"path": "init", "type": "symlink", "target": "/bin/sh"},
           {"path": "etc", "type": "dir"}, {"path": "etc/old", "type": "file", "content": "old"},
           {"path": "etc/keep", "type": "file", "content": "keep"},
           {"path": "opt", "type": "dir"}, {"path": "opt/a", "type": "file", "content": "a"},
           {"path": "opt/sub", "type": "dir"}, {"path": "opt/sub/b", "type": "file", "content": "b"},
           {"path": "data", "type": "file", "content": "shared data", "mode": 416, "uid": 1000, "gid": 100},
           {"path": "dev", "type": "dir"}, {"path": "dev/console", "type": "chardev", "major": 5, "minor": 1, "mode": 384},
           {"path": "dev/vda", "type": "blockdev", "major": 254, "minor": 0, "mode": 432, "gid": 6},
           {"path": "run", "type": "dir", "mode": 448}, {"path": "run/fifo", "type": "fifo"},
           {"path": "var", "type": "dir"}, {"path": "var/lib", "type": "dir"}, {"path": "var/lib/x", "type": "file", "content": "x"},
           {"path": "usr", "type": "dir"}, {"path": "usr/lib", "type": "dir"}, {"path": "usr/lib/libz", "type": "file", "content": "z"},
           {"path": "big", "type": "random", "size": 2000000, "seed": 9}
         ]},
         {"compression": "zstd", "entries": [
           {"path": "etc/old", "type": "whiteout"},
           {"path": "opt", "type": "opaque"}, {"path": "opt/c", "type": "file", "content": "c"},
           {"path": "link-to-data", "type": "hardlink", "target": "data"},
           {"path": "var/lib", "type": "file", "content": "a file replaces a directory"},
           {"path": "etc", "type": "dir", "mode": 488},
           {"path": ".", "type": "dir", "mode": 493, "uid": 7, "gid": 8},
           {"path": "boot/wyrcan.cmdline", "type": "file", "content": "quiet  root=live\\n"}
         ]},
         {"compression": "none", "entries": [
           {"path": "link2", "type": "hardlink", "target": "link-to-data"},
           {"path": "lib", "type": "symlink", "target": "usr/lib"},
           {"path": "big", "type": "whiteout"}
         ]}
        ]}]}
        """

    static let twoPlatforms = """
        {"tag": "multi", "images": [
          {"platform": {"os": "linux", "architecture": "amd64"}, "layers": [{"entries": [
            {"path": "boot", "type": "dir"}, {"path": "boot/wyrcan.kernel", "type": "file", "content": "amd64 kernel"},
            {"path": "init", "type": "file", "content": "#!amd64", "mode": 493}]}]},
          {"platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}, "layers": [{"entries": [
            {"path": "boot", "type": "dir"}, {"path": "boot/wyrcan.kernel", "type": "file", "content": "arm64 kernel"},
            {"path": "init", "type": "file", "content": "#!arm64", "mode": 493}]}]}
        ]}
        """

    static let small = """
        {"tag": "small", "images": [{"layers": [{"entries": [
          {"path": "boot", "type": "dir"}, {"path": "boot/wyrcan.kernel", "type": "random", "size": 150000, "seed": 3},
          {"path": "boot/wyrcan.cmdline", "type": "file", "content": "console=ttyS0"},
          {"path": "init", "type": "file", "content": "#!/bin/sh", "mode": 493}]}]}]}
        """

    func unpack(initrd: String, compression: String = "zstd", into dir: String) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let tool = ["zstd": "zstd -dc", "gzip": "gzip -dc", "none": "cat"][compression]!
        let r = try Sys.sh("cd '\(dir)' && \(tool) '\(initrd)' | cpio -idm --quiet")
        #expect(r.status == 0, "cpio -i: \(r.stderr)")
    }

    /// The cross-check: `umoci unpack` of `image` (into `work`/bundle) equals the unpacked
    /// initrd at `rootfs`, except `absent` paths, which the initrd must not have.
    func expectUmociTree(image: String, matches rootfs: String, in work: String, absent: [String]) throws {
        let u = try Sys.run("/usr/bin/umoci", ["unpack", "--image", image, work + "/bundle"])
        #expect(u.status == 0, "umoci: \(u.stderr)")
        let cmp = try Sys.run("/usr/bin/python3", [Sys.fixtures + "/treecmp.py", work + "/bundle/rootfs", rootfs] + absent.flatMap { ["--absent", $0] })
        #expect(cmp.status == 0, "\(cmp.stdout)")
    }

    @Test func multiLayerFromRegistryMatchesUmoci() throws {
        let work = try Sys.tempDir("multi")
        let registry = try LocalRegistry(name: "plain")
        try Sys.buildImage(Self.multiLayer, layout: work + "/layout")
        try registry.push(layout: work + "/layout", tag: "v1", to: "test/multi")

        let r = try Sys.wyrcan(["convert", "\(registry.host)/test/multi:v1", "--insecure-registry", registry.host, "--output", work + "/out"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("sha256:"))
        #expect(r.stderr.contains("layer 3/3"))
        let cmdline = try String(contentsOfFile: work + "/out/cmdline", encoding: .utf8)
        #expect(cmdline == "quiet root=live\n")

        // The reference: umoci unpacks the same layers (gzip-only: umoci 0.4 has no zstd).
        try Sys.buildImage(Self.multiLayer, layout: work + "/gz", gzipOnly: true)
        try unpack(initrd: work + "/out/initrd", into: work + "/rootfs")
        // The same tree, besides the kernel (the file and the /boot/wyrcan.kernel symlink to it).
        try expectUmociTree(image: work + "/gz:v1", matches: work + "/rootfs", in: work, absent: ["boot/vmlinuz-1", "boot/wyrcan.kernel"])

        // The kernel is the symlink's target, byte for byte.
        let kernel = try Data(contentsOf: URL(fileURLWithPath: work + "/out/kernel"))
        let expected = try Data(contentsOf: URL(fileURLWithPath: work + "/bundle/rootfs/boot/vmlinuz-1"))
        #expect(kernel == expected)
        // What the layers did, spelled out.
        let fm = FileManager.default
        #expect(!fm.fileExists(atPath: work + "/rootfs/etc/old"))
        #expect(fm.fileExists(atPath: work + "/rootfs/etc/keep"))
        #expect(!fm.fileExists(atPath: work + "/rootfs/opt/a") && fm.fileExists(atPath: work + "/rootfs/opt/c"))
        #expect(!fm.fileExists(atPath: work + "/rootfs/big"))
        let a = try fm.attributesOfItem(atPath: work + "/rootfs/data")[.systemFileNumber] as? Int
        let b = try fm.attributesOfItem(atPath: work + "/rootfs/link2")[.systemFileNumber] as? Int
        #expect(a != nil && a == b, "hard links stay hard links")
        // The topmost layer's `./` entry gives / its mode and owner: umoci applies it, and the
        // initrd's first member carries it for the kernel (`cpio -i` leaves an existing . alone).
        let umociRoot = try fm.attributesOfItem(atPath: work + "/bundle/rootfs")
        #expect(umociRoot[.ownerAccountID] as? Int == 7 && umociRoot[.groupOwnerAccountID] as? Int == 8, "\(umociRoot)")
        let listing = try Sys.sh("zstd -dc '\(work)/out/initrd' | cpio -itvn --quiet | head -1")
        let first = listing.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ", omittingEmptySubsequences: true)
        #expect(first.first == "drwxr-xr-x" && first.count > 3 && first[2] == "7" && first[3] == "8" && first.last == ".", "\(listing.stdout)")
    }

    /// On a terminal the progress is a live status line redrawn in place (carriage return, erase
    /// line) with a line per finished layer above it; without one, plain lines and no escapes.
    @Test func progressIsALiveLineOnATerminal() throws {
        let work = try Sys.tempDir("tty")
        let registry = try LocalRegistry(name: "tty")
        try Sys.buildImage(Self.multiLayer, layout: work + "/layout")
        try registry.push(layout: work + "/layout", tag: "v1", to: "test/multi")
        let ref = "\(registry.host)/test/multi:v1"
        let tty = try Sys.run("/usr/bin/script", ["-qec", "'\(Sys.binary("wyrcan"))' convert \(ref) --insecure-registry \(registry.host) -o '\(work)/tty'", "/dev/null"])
        #expect(tty.status == 0, "\(tty.stdout)")
        #expect(tty.stdout.contains("\r\u{1B}[K● Getting \(ref): "), "\(tty.stdout.debugDescription)")
        #expect(tty.stdout.contains(", 3/3 layers, ") && tty.stdout.contains("\r\u{1B}[K  layer "), "\(tty.stdout.debugDescription)")
        let plain = try Sys.wyrcan(["convert", ref, "--insecure-registry", registry.host, "-o", work + "/plain"])
        #expect(plain.status == 0, "\(plain.stderr)")
        #expect(plain.stderr.contains("layer 3/3") && !plain.stderr.contains("\u{1B}["), "\(plain.stderr.debugDescription)")

        // A 40-column terminal: the live line is cut to 39 columns (a wrapped one would not be
        // erased by the next redraw). An error erases it first.
        let narrow = try Sys.run("/usr/bin/script", ["-qec", "stty cols 40; '\(Sys.binary("wyrcan"))' convert \(ref) --insecure-registry \(registry.host) -o '\(work)/narrow'", "/dev/null"])
        #expect(narrow.status == 0, "\(narrow.stdout)")
        let live = narrow.stdout.components(separatedBy: "\u{1B}[K").map { String($0.prefix { $0 != "\r" && $0 != "\n" }) }.filter { $0.hasPrefix("● Getting") }
        #expect(!live.isEmpty && live.allSatisfy { $0.count <= 39 }, "\(live)")
        let failing = try Sys.run("/usr/bin/script", ["-qec", "'\(Sys.binary("wyrcan"))' convert \(registry.host)/test/missing:v1 --insecure-registry \(registry.host) -o '\(work)/missing'", "/dev/null"])
        #expect(failing.stdout.contains("\r\u{1B}[Kwyrcan: error: "), "\(failing.stdout.debugDescription)")
    }

    /// gzip and none, and zstd compressed on one background thread (`--threads 1`, the boot
    /// agent's way) at another level: the initrd (several MiB, so several queued chunks) unpacks
    /// to the same files.
    @Test(arguments: [["--compression", "gzip"], ["--compression", "none"], ["--compression", "zstd", "--threads", "1", "--level", "5"]])
    func otherCompressions(options: [String]) throws {
        let compression = options[1]
        let work = try Sys.tempDir("comp-\(compression)")
        try Sys.buildImage("""
            {"tag": "sized", "images": [{"layers": [{"entries": [
              {"path": "boot", "type": "dir"}, {"path": "boot/wyrcan.kernel", "type": "random", "size": 150000, "seed": 3},
              {"path": "data", "type": "random", "size": 3000000, "seed": 11}, {"path": "text", "type": "text", "size": 2500000, "seed": 12},
              {"path": "init", "type": "file", "content": "#!/bin/sh", "mode": 493}]}]}]}
            """, layout: work + "/layout")
        let r = try Sys.wyrcan(["convert", "oci:\(work)/layout:sized"] + options + ["--output", work + "/out", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.isEmpty)
        // Only the three artifacts remain (the work directory with the staged layers is gone).
        #expect(try FileManager.default.contentsOfDirectory(atPath: work + "/out").sorted() == ["cmdline", "initrd", "kernel"])
        try unpack(initrd: work + "/out/initrd", compression: compression, into: work + "/rootfs")
        #expect(FileManager.default.isExecutableFile(atPath: work + "/rootfs/init"))
        // (umoci reads the same layout afterwards: staging leaves a layout's own blobs alone.)
        try expectUmociTree(image: work + "/layout:sized", matches: work + "/rootfs", in: work, absent: ["boot/wyrcan.kernel"])
    }

    /// With several threads the initrd is a run of independent frames (zstd) or members (gzip),
    /// each ending between two cpio members; decompressed, it is the very same cpio stream as the
    /// single frame that one thread writes. Files over the 8 MiB frame limit take the streaming
    /// path (a frame of their own).
    @Test(arguments: ["zstd", "gzip"])
    func severalThreadsWriteFramesOfWholeMembers(compression: String) throws {
        let work = try Sys.tempDir("frames-\(compression)")
        let spec = """
            {"tag": "framed", "images": [{"layers": [{"compression": "gzip", "entries": [
              {"path": "boot", "type": "dir"}, {"path": "boot/wyrcan.kernel", "type": "random", "size": 150000, "seed": 3},
              {"path": "a", "type": "random", "size": 1500000, "seed": 21}, {"path": "b", "type": "text", "size": 1700000, "seed": 22},
              {"path": "c", "type": "random", "size": 900000, "seed": 23}, {"path": "d", "type": "text", "size": 2300000, "seed": 24},
              {"path": "huge", "type": "text", "size": 9500000, "seed": 25}, {"path": "e", "type": "random", "size": 2100000, "seed": 26},
              {"path": "init", "type": "file", "content": "#!/bin/sh", "mode": 493}]},
              {"compression": "zstd", "entries": [{"path": "f", "type": "random", "size": 3000000, "seed": 27},
              {"path": "g", "type": "hardlink", "target": "d"}]}]}]}
            """
        try Sys.buildImage(spec, layout: work + "/layout")
        for threads in ["1", "2"] {
            let r = try Sys.wyrcan(["convert", "oci:\(work)/layout:framed", "--compression", compression, "--threads", threads,
                                    "--output", "\(work)/out\(threads)", "--quiet"])
            #expect(r.status == 0, "\(r.stderr)")
        }
        let tool = compression == "zstd" ? "zstd -dc" : "gzip -dc"
        let one = try Sys.sh("\(tool) '\(work)/out1/initrd' | sha256sum").stdout
        let two = try Sys.sh("\(tool) '\(work)/out2/initrd' | sha256sum").stdout
        #expect(one == two && one.count > 64, "the same cpio stream")
        if compression == "zstd" {
            let frames = { (path: String) throws -> Int in
                let out = try Sys.sh("zstd -lv '\(path)' | sed -n 's/^# Zstandard Frames: //p'").stdout
                return Int(out.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
            }
            #expect(try frames(work + "/out1/initrd") == 1)
            #expect(try frames(work + "/out2/initrd") >= 5)
        } else {
            // One gzip header (1f 8b 08) per member.
            let members = try Sys.sh("python3 -c \"import sys; d=open(sys.argv[1],'rb').read(); print(d.count(bytes([0x1f,0x8b,8,0])))\" '\(work)/out2/initrd'").stdout
            #expect((Int(members.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) >= 5)
        }
        try unpack(initrd: work + "/out2/initrd", compression: compression, into: work + "/rootfs")
        try Sys.buildImage(spec, layout: work + "/gz", gzipOnly: true)  // (umoci 0.4 has no zstd)
        try expectUmociTree(image: work + "/gz:framed", matches: work + "/rootfs", in: work, absent: ["boot/wyrcan.kernel"])
    }

    /// A disk that fills up while the initrd is written (here in a member over the frame limit,
    /// compressed as it streams, or by the single compressor thread) fails with the reason and
    /// leaves no artifacts behind.
    @Test(arguments: ["1", "2"])
    func aFullDiskFailsWithItsReason(threads: String) throws {
        let work = try Sys.tempDir("full-\(threads)")
        try Sys.buildImage("""
            {"tag": "full", "images": [{"layers": [{"entries": [
              {"path": "boot", "type": "dir"}, {"path": "boot/wyrcan.kernel", "type": "random", "size": 150000, "seed": 3},
              {"path": "small", "type": "random", "size": 1000000, "seed": 31},
              {"path": "huge", "type": "random", "size": 12000000, "seed": 32},
              {"path": "init", "type": "file", "content": "#!/bin/sh", "mode": 493}]}]}]}
            """, layout: work + "/layout")
        let mountPoint = work + "/tiny"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let m = try Sys.run("/bin/mount", ["-t", "tmpfs", "-o", "size=6m", "tmpfs", mountPoint])
        try #require(m.status == 0, "mount tmpfs: \(m.stderr)")
        defer { _ = try? Sys.run("/bin/umount", [mountPoint]) }
        let r = try Sys.wyrcan(["convert", "oci:\(work)/layout:full", "--threads", threads, "--output", mountPoint + "/out", "--quiet"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("No space left on device"), "\(r.stderr)")
        let left = (try? FileManager.default.contentsOfDirectory(atPath: mountPoint + "/out")) ?? []
        #expect(left.filter { !$0.hasPrefix(".") }.isEmpty, "left behind: \(left)")
    }

    /// Linux itself unpacks a multi-frame initrd: the test image with /payload (two files over the
    /// frame limit) converted on two threads boots under QEMU, and its /init hashes the payload
    /// it finds to what cpio -i unpacks on the host.
    @Test(.timeLimit(.minutes(10)))
    func aMultiFrameInitrdBootsUnderQEMU() throws {
        let work = try Sys.tempDir("frames-boot")
        let image = try Sys.run("/usr/bin/env", ["PAYLOAD=1", Sys.root + "/scripts/build-test-image", work + "/payload", "FRAMES-MARKER", "console=ttyS0"])
        try #require(image.status == 0, "build-test-image: \(image.stderr)")
        let r = try Sys.wyrcan(["convert", "oci:\(work)/payload", "--threads", "2", "--output", work + "/out", "--quiet"])
        try #require(r.status == 0, "\(r.stderr)")
        try unpack(initrd: work + "/out/initrd", into: work + "/rootfs")
        let expected = try Sys.sh("cat '\(work)'/rootfs/payload/* | md5sum").stdout.split(separator: " ").first.map(String.init) ?? "?"
        let log = work + "/console"
        _ = try Sys.run("/usr/bin/timeout", ["300", "qemu-system-x86_64", "-accel", "tcg", "-m", "1G", "-display", "none",
            "-serial", "file:\(log)", "-monitor", "none", "-no-reboot", "-net", "none",
            "-kernel", work + "/out/kernel", "-initrd", work + "/out/initrd", "-append", "console=ttyS0"])
        let console = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(!console.contains("Initramfs unpacking failed"), "\(console.suffix(3000))")
        #expect(console.contains("payload=\(expected)"), "expected payload=\(expected):\n\(console.suffix(3000))")
        #expect(console.contains("FRAMES-MARKER cmdline=console=ttyS0"))
    }

    /// Gzip layers inflate with ISA-L where libisal.so.2 loads, with zlib otherwise
    /// (`WYRCAN_GZIP=zlib` chooses it): the initrds are byte for byte the same.
    @Test func isalAndZlibGiveTheSameInitrd() throws {
        let work = try Sys.tempDir("isal-zlib")
        try Sys.buildImage(Self.multiLayer, layout: work + "/gz", gzipOnly: true)
        var sums: [String] = []
        for engine in ["isal", "zlib"] {
            var environment = ProcessInfo.processInfo.environment
            environment["WYRCAN_GZIP"] = engine
            let r = try Sys.run(Sys.binary("wyrcan"), ["convert", "oci:\(work)/gz:v1", "--output", "\(work)/out-\(engine)"], environment: environment)
            #expect(r.status == 0, "\(engine): \(r.stderr)")
            #expect(r.stderr.contains("gzip layers inflated with \(engine == "isal" ? "ISA-L" : "zlib")"), "\(r.stderr)")
            sums.append(try Sys.sh("sha256sum < '\(work)/out-\(engine)/initrd'").stdout)
        }
        #expect(sums[0] == sums[1] && !sums[0].isEmpty)
    }

    /// On a filesystem without room to stage the decompressed layers, convert reads them twice
    /// instead, and the result is the same tree.
    @Test func littleFreeSpaceReadsTheLayersTwice() throws {
        let work = try Sys.tempDir("small-fs")
        try Sys.buildImage(Self.multiLayer, layout: work + "/layout")
        let mountPoint = work + "/small"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let m = try Sys.run("/bin/mount", ["-t", "tmpfs", "-o", "size=48m", "tmpfs", mountPoint])
        try #require(m.status == 0, "mount tmpfs: \(m.stderr)")
        defer { _ = try? Sys.run("/bin/umount", [mountPoint]) }
        let r = try Sys.wyrcan(["convert", "oci:\(work)/layout:v1", "--output", mountPoint + "/out"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("reading the layers twice"), "\(r.stderr)")
        try Sys.buildImage(Self.multiLayer, layout: work + "/gz", gzipOnly: true)
        try unpack(initrd: mountPoint + "/out/initrd", into: work + "/rootfs")
        try expectUmociTree(image: work + "/gz:v1", matches: work + "/rootfs", in: work, absent: ["boot/vmlinuz-1", "boot/wyrcan.kernel"])
    }

    /// A merged-/usr image (`lib` → `usr/lib`) and a layer that adds `lib/modules/…` without an
    /// entry for `lib`, as `tar -cf l.tar lib/modules` writes it: the files land in `usr/lib`,
    /// through the symlink, which stays; whiteouts and hard links go through it too. And a
    /// whiteout or opaque marker hides only lower layers' files, also when this layer's files
    /// came first and their directory has no entry of its own in this layer.
    @Test func layersWriteThroughSymlinkedDirectoriesAndWhiteoutsHideOnlyLowerLayers() throws {
        let work = try Sys.tempDir("usrmerge")
        let spec = """
            {"tag": "merged", "images": [{"layers": [
             {"compression": "gzip", "entries": [
               {"path": "boot", "type": "dir"}, {"path": "boot/wyrcan.kernel", "type": "file", "content": "kernel"},
               {"path": "init", "type": "file", "content": "#!/bin/sh", "mode": 493},
               {"path": "usr", "type": "dir"}, {"path": "usr/lib", "type": "dir", "mode": 488},
               {"path": "usr/lib/libc.so", "type": "file", "content": "libc"}, {"path": "usr/lib/libm.so", "type": "file", "content": "libm"},
               {"path": "lib", "type": "symlink", "target": "usr/lib"},
               {"path": "opt", "type": "dir"}, {"path": "opt/a", "type": "file", "content": "a"},
               {"path": "opt/sub", "type": "dir"}, {"path": "opt/sub/b", "type": "file", "content": "b"},
               {"path": "d", "type": "dir"}, {"path": "d/old", "type": "file", "content": "old"}
             ]},
             {"compression": "gzip", "entries": [
               {"path": "lib/modules/6.1/kernel.ko", "type": "file", "content": "module"},
               {"path": "lib/libc.so", "type": "whiteout"},
               {"path": "lib/libm-link.so", "type": "hardlink", "target": "lib/libm.so"},
               {"path": "opt/sub/new", "type": "file", "content": "new"}, {"path": "opt", "type": "opaque"},
               {"path": "d/new", "type": "file", "content": "new"}, {"path": "d", "type": "whiteout"},
               {"path": "e/../f", "type": "file", "content": "cleaned"}
             ]}
            ]}]}
            """
        try Sys.buildImage(spec, layout: work + "/layout")
        let r = try Sys.wyrcan(["convert", "oci:\(work)/layout:merged", "--output", work + "/out", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        try unpack(initrd: work + "/out/initrd", into: work + "/rootfs")
        try expectUmociTree(image: work + "/layout:merged", matches: work + "/rootfs", in: work, absent: ["boot/wyrcan.kernel"])

        let fm = FileManager.default
        let root = work + "/rootfs"
        #expect(try fm.destinationOfSymbolicLink(atPath: root + "/lib") == "usr/lib", "the symlink stays")
        #expect(try String(contentsOfFile: root + "/usr/lib/modules/6.1/kernel.ko", encoding: .utf8) == "module")
        #expect(!fm.fileExists(atPath: root + "/usr/lib/libc.so"), "whited out through the symlink")
        let libm = try fm.attributesOfItem(atPath: root + "/usr/lib/libm.so")[.systemFileNumber] as? Int
        let link = try fm.attributesOfItem(atPath: root + "/usr/lib/libm-link.so")[.systemFileNumber] as? Int
        #expect(libm != nil && libm == link, "hard-linked through the symlink")
        #expect(try fm.contentsOfDirectory(atPath: root + "/opt") == ["sub"])
        #expect(try fm.contentsOfDirectory(atPath: root + "/opt/sub") == ["new"])
        #expect(try fm.contentsOfDirectory(atPath: root + "/d") == ["new"])
        #expect(try String(contentsOfFile: root + "/f", encoding: .utf8) == "cleaned")
        #expect(!fm.fileExists(atPath: root + "/e"))
    }

    /// `/boot` as a symlink (to `usr/boot`): the kernel, its `wyrcan.kernel` symlink and the
    /// cmdline are found through it, like any path in the image. A time before 1970, which newc
    /// cannot hold, is written as 1970.
    @Test func bootPiecesAreFoundThroughASymlinkedBoot() throws {
        let work = try Sys.tempDir("boot-link")
        try Sys.buildImage("""
            {"tag": "t", "images": [{"layers": [{"entries": [
              {"path": "usr", "type": "dir"}, {"path": "usr/boot", "type": "dir"}, {"path": "boot", "type": "symlink", "target": "usr/boot"},
              {"path": "usr/boot/vmlinuz", "type": "file", "content": "the kernel"},
              {"path": "usr/boot/wyrcan.kernel", "type": "symlink", "target": "vmlinuz"},
              {"path": "usr/boot/wyrcan.cmdline", "type": "file", "content": "console=ttyS0"},
              {"path": "old", "type": "file", "content": "x", "mtime": -1},
              {"path": "init", "type": "file", "content": "#!/bin/sh", "mode": 493}]}]}]}
            """, layout: work + "/layout")
        let r = try Sys.wyrcan(["convert", "oci:\(work)/layout:t", "--output", work + "/out", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try String(contentsOfFile: work + "/out/kernel", encoding: .utf8) == "the kernel")
        #expect(try String(contentsOfFile: work + "/out/cmdline", encoding: .utf8) == "console=ttyS0\n")
        try unpack(initrd: work + "/out/initrd", into: work + "/rootfs")
        let fm = FileManager.default
        #expect(!fm.fileExists(atPath: work + "/rootfs/usr/boot/vmlinuz") && (try? fm.destinationOfSymbolicLink(atPath: work + "/rootfs/usr/boot/wyrcan.kernel")) == nil,
                "the kernel and its wyrcan.kernel link stay out of the initrd")
        let mtime = try fm.attributesOfItem(atPath: work + "/rootfs/old")[.modificationDate] as? Date
        #expect(mtime?.timeIntervalSince1970 == 0, "\(String(describing: mtime))")
    }

    /// OCI layouts as skopeo writes them: a tag may hold `/` and `:` (`oci:DIR:example.com/app:1.0`
    /// splits at the first colon), and one tag may sit on one manifest per platform.
    @Test func layoutTagsWithSlashesAndOneTagPerPlatform() throws {
        let work = try Sys.tempDir("layout-tags")
        try Sys.buildImage(Self.small.replacingOccurrences(of: #""tag": "small""#, with: #""tag": "example.com/app:1.0""#), layout: work + "/layout")
        let r = try Sys.wyrcan(["convert", "oci:\(work)/layout:example.com/app:1.0", "--output", work + "/out", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let wrongTag = try Sys.wyrcan(["convert", "oci:\(work)/layout:nope", "--output", work + "/out", "--quiet"])
        #expect(wrongTag.stderr == "wyrcan: error: oci:\(work)/layout:nope: no image tagged nope (tags in the layout: example.com/app:1.0)\n", "\(wrongTag.stderr)")
        let noLayout = try Sys.wyrcan(["convert", "oci:\(work)/missing", "--output", work + "/out", "--quiet"])
        #expect(noLayout.stderr == "wyrcan: error: oci:\(work)/missing: no index.json: not an OCI image layout\n", "\(noLayout.stderr)")

        // The two platform manifests of an index, each tagged "multi" in index.json itself.
        try Sys.buildImage(Self.twoPlatforms, layout: work + "/multi")
        let flatten = try Sys.run("/usr/bin/python3", ["-c", """
            import json, sys
            layout = sys.argv[1]
            index = json.load(open(layout + "/index.json"))
            nested = json.load(open(layout + "/blobs/sha256/" + index["manifests"][0]["digest"][7:]))
            for m in nested["manifests"]:
                m["annotations"] = {"org.opencontainers.image.ref.name": "multi"}
            index["manifests"] = nested["manifests"]
            json.dump(index, open(layout + "/index.json", "w"))
            """, work + "/multi"])
        #expect(flatten.status == 0, "\(flatten.stderr)")
        for (platform, kernel) in [("linux/amd64", "amd64 kernel"), ("linux/arm64", "arm64 kernel")] {
            let out = work + "/" + kernel.prefix(5)
            let c = try Sys.wyrcan(["convert", "oci:\(work)/multi:multi", "--platform", platform, "--output", out, "--quiet"])
            #expect(c.status == 0, "\(c.stderr)")
            #expect((try? String(contentsOfFile: out + "/kernel", encoding: .utf8)) == kernel)
        }
        let none = try Sys.wyrcan(["convert", "oci:\(work)/multi:multi", "--platform", "linux/riscv64", "--output", work + "/none", "--quiet"])
        #expect(none.status == 1 && none.stderr.contains("no image for platform linux/riscv64"), "\(none.stderr)")
    }

    /// The kernel is left out of the initrd by its /boot/wyrcan.kernel name only: another hard-link
    /// name of the same file is the image's own and keeps the data.
    @Test func aKernelHardLinkedElsewhereKeepsItsOtherName() throws {
        let work = try Sys.tempDir("kernel-link")
        try Sys.buildImage("""
            {"tag": "linked", "images": [{"layers": [{"entries": [
              {"path": "boot", "type": "dir"}, {"path": "boot/wyrcan.kernel", "type": "file", "content": "the kernel"},
              {"path": "usr", "type": "dir"}, {"path": "usr/vmlinuz", "type": "hardlink", "target": "boot/wyrcan.kernel"},
              {"path": "init", "type": "file", "content": "#!/bin/sh", "mode": 493}]}]}]}
            """, layout: work + "/layout")
        let r = try Sys.wyrcan(["convert", "oci:\(work)/layout:linked", "--output", work + "/out", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try String(contentsOfFile: work + "/out/kernel", encoding: .utf8) == "the kernel")
        try unpack(initrd: work + "/out/initrd", into: work + "/rootfs")
        #expect(!FileManager.default.fileExists(atPath: work + "/rootfs/boot/wyrcan.kernel"))
        #expect(try String(contentsOfFile: work + "/rootfs/usr/vmlinuz", encoding: .utf8) == "the kernel")
    }

    @Test func convertOptionsAreValidated() throws {
        for (options, message) in [(["--threads", "0"], "--threads must be 1–256"), (["--compression", "none", "--level", "3"], "--level is not used with --compression none"),
                                   (["--compression", "gzip", "--level", "12"], "--level must be 1–9"),
                                   (["--mirror", "https://mirror.example"], "--mirror https://mirror.example: give HOST[:PORT], without a scheme or path")] {
            let r = try Sys.wyrcan(["convert", "oci:/nonexistent:x", "--output", "/tmp/unused"] + options)
            #expect(r.status != 0 && r.stderr.contains(message), "\(options): \(r.stderr)")
        }
        let empty = try Sys.wyrcan(["convert", "oci:/nonexistent:x", "--output", ""])
        #expect(empty.status != 0 && empty.stderr.contains("--output needs a directory"), "\(empty.stderr)")
    }

    @Test func platformSelectionFromAnIndex() throws {
        let work = try Sys.tempDir("platforms")
        let registry = try LocalRegistry(name: "platforms")
        try Sys.buildImage(Self.twoPlatforms, layout: work + "/layout")
        let p = try Sys.run("/usr/bin/skopeo", ["copy", "--quiet", "--all", "--dest-tls-verify=false", "oci:\(work)/layout:multi", "docker://\(registry.host)/test/multi:multi"])
        #expect(p.status == 0, "\(p.stderr)")
        let ref = "\(registry.host)/test/multi:multi"
        let amd = try Sys.wyrcan(["convert", ref, "--insecure-registry", registry.host, "-o", work + "/amd", "--quiet"])
        #expect(amd.status == 0, "\(amd.stderr)")
        #expect(try String(contentsOfFile: work + "/amd/kernel", encoding: .utf8) == "amd64 kernel")
        let arm = try Sys.wyrcan(["convert", ref, "--platform", "linux/arm64", "--insecure-registry", registry.host, "-o", work + "/arm", "--quiet"])
        #expect(arm.status == 0, "\(arm.stderr)")
        #expect(try String(contentsOfFile: work + "/arm/kernel", encoding: .utf8) == "arm64 kernel")
        #expect(amd.stdout != arm.stdout, "each platform has its own manifest digest")
        let none = try Sys.wyrcan(["convert", ref, "--platform", "linux/riscv64", "--insecure-registry", registry.host, "-o", work + "/none", "--quiet"])
        #expect(none.status == 1)
        #expect(none.stderr.contains("no image for platform linux/riscv64 (available: linux/amd64, linux/arm64/v8)"), "\(none.stderr)")
        // By digest, too.
        let digest = amd.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let byDigest = try Sys.wyrcan(["convert", "\(registry.host)/test/multi@\(digest)", "--insecure-registry", registry.host, "-o", work + "/d", "--quiet"])
        #expect(byDigest.status == 0, "\(byDigest.stderr)")
        #expect(byDigest.stdout == amd.stdout)
    }

    @Test(arguments: [
        ("""
         {"images": [{"layers": [{"entries": [{"path": "init", "type": "file", "content": "x", "mode": 493}]}]}]}
         """, "the image has no /boot/wyrcan.kernel: install a kernel"),
        ("""
         {"images": [{"layers": [{"entries": [{"path": "boot", "type": "dir"}, {"path": "boot/wyrcan.kernel", "type": "file", "content": "k"}]}]}]}
         """, "the image has no /init: symlink its init system there"),
        ("""
         {"images": [{"layers": [{"entries": [{"path": "boot", "type": "dir"}, {"path": "boot/wyrcan.kernel", "type": "file", "content": "k"},
           {"path": "init", "type": "file", "content": "x", "mode": 420}]}]}]}
         """, "/init (/init) is not executable (mode 644)"),
        ("""
         {"images": [{"layers": [{"entries": [{"path": "boot", "type": "dir"}, {"path": "boot/wyrcan.kernel", "type": "symlink", "target": "../../../etc/k"},
           {"path": "init", "type": "file", "content": "x", "mode": 493}]}]}]}
         """, "the image has no /boot/wyrcan.kernel"),
        ("""
         {"images": [{"layers": [{"entries": [{"path": "boot", "type": "dir"}, {"path": "boot/wyrcan.kernel", "type": "file", "content": "k"},
           {"path": "init", "type": "symlink", "target": "/sbin/missing"}]}]}]}
         """, "/init resolves to /sbin/missing, which is not an executable file inside the image"),
        ("""
         {"images": [{"layers": [{"entries": [{"path": "boot", "type": "dir"}, {"path": "boot/wyrcan.kernel", "type": "file", "content": "k"},
           {"path": "init", "type": "symlink", "target": "../../../usr/bin/env"}]}]}]}
         """, "/init resolves to ../../../usr/bin/env, which is not an executable file inside the image"),
        ("""
         {"images": [{"layers": [{"entries": [{"path": "../escape", "type": "file", "content": "x"}]}]}]}
         """, #"entry "../escape" points outside the image root"#),
        ("""
         {"images": [{"layers": [{"entries": [{"path": "boot", "type": "dir"}, {"path": "boot/wyrcan.kernel", "type": "file", "content": "k"},
           {"path": "boot/wyrcan.cmdline", "type": "file", "content": "quiet\\u0000 console=ttyS0"},
           {"path": "init", "type": "file", "content": "x", "mode": 493}]}]}]}
         """, "/boot/wyrcan.cmdline: contains a NUL byte, where the kernel would cut it short"),
        ("""
         {"images": [{"layers": [{"entries": [{"path": "boot", "type": "dir"}, {"path": "boot/wyrcan.kernel", "type": "file", "content": "k"},
           {"path": "boot/wyrcan.cmdline", "type": "file", "content": "quiet msg=voil\\u00e0"},
           {"path": "init", "type": "file", "content": "x", "mode": 493}]}]}]}
         """, #"/boot/wyrcan.cmdline: the kernel would split "msg=voil"#),
        ("""
         {"images": [{"layers": [
           {"entries": [{"path": "boot", "type": "dir"}, {"path": "boot/wyrcan.kernel", "type": "file", "content": "k"},
             {"path": "init", "type": "file", "content": "x", "mode": 493},
             {"path": "usr", "type": "dir"}, {"path": "usr/UTC", "type": "file", "content": "TZif"},
             {"path": "etc", "type": "dir"}, {"path": "etc/localtime", "type": "symlink", "target": "/usr/UTC"}]},
           {"entries": [{"path": "etc/localtime/x", "type": "file", "content": "x"}]}]}]}
         """, #"layer 2: "etc/localtime/x" leads through a symlink to "usr/UTC", which is not a directory"#),
        ("""
         {"images": [{"layers": [{"entries": [{"path": "boot", "type": "dir"}, {"path": "boot/wyrcan.kernel", "type": "file", "content": "k"},
           {"path": "init", "type": "file", "content": "x", "mode": 493, "uid": 4294967296}]}]}]}
         """, #""init": owner 4294967296:0 does not fit in 32 bits"#),
    ])
    func brokenImagesExplainWhatIsMissing(spec: String, message: String) throws {
        let work = try Sys.tempDir("broken-\(abs(message.hashValue))")
        try Sys.buildImage(spec, layout: work + "/layout")
        let r = try Sys.wyrcan(["convert", "oci:\(work)/layout", "-o", work + "/out", "--quiet"])
        #expect(r.status == 1)
        #expect(r.stderr.contains(message), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1)
        #expect((try? FileManager.default.contentsOfDirectory(atPath: work + "/out")) == [])
    }

    /// umoci 0.4 ends layers right after the last member's data (no padding, no end blocks);
    /// Docker and umoci accept that, so Wyrcan does too, for every compression.
    @Test(arguments: ["gzip", "zstd", "none"])
    func layersWithoutEndOfArchiveBlocks(compression: String) throws {
        let work = try Sys.tempDir("noend-\(compression)")
        let spec = """
            {"images": [{"layers": [{"compression": "\(compression)", "no_end_blocks": true, "entries": [
              {"path": "boot", "type": "dir"}, {"path": "boot/wyrcan.kernel", "type": "file", "content": "kernel"},
              {"path": "init", "type": "file", "content": "#!/bin/sh\\nexec sh", "mode": 493}]}]}]}
            """
        try Sys.buildImage(spec, layout: work + "/layout")
        let r = try Sys.wyrcan(["convert", "oci:\(work)/layout", "-o", work + "/out", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        try unpack(initrd: work + "/out/initrd", into: work + "/rootfs")
        #expect(try String(contentsOfFile: work + "/rootfs/init", encoding: .utf8) == "#!/bin/sh\nexec sh")
    }

    /// From an OCI archive and from a layout, with a manifest that lists one layer twice (builders
    /// do emit repeated identical layers): both read the one blob file, which stays. The archive
    /// stores that blob as a tar hard link to another name.
    @Test func ociArchive() throws {
        let work = try Sys.tempDir("archive")
        let layer = """
            {"entries": [{"path": "boot", "type": "dir"}, {"path": "boot/wyrcan.kernel", "type": "random", "size": 150000, "seed": 3},
              {"path": "boot/wyrcan.cmdline", "type": "file", "content": "console=ttyS0"},
              {"path": "init", "type": "file", "content": "#!/bin/sh", "mode": 493}]}
            """
        try Sys.buildImage(#"{"tag": "small", "images": [{"layers": [\#(layer), \#(layer)]}]}"#, layout: work + "/layout")
        let blobs = try FileManager.default.contentsOfDirectory(atPath: work + "/layout/blobs/sha256").sorted()
        #expect(blobs.count == 3, "one layer blob, the config and the manifest: \(blobs)")
        // A second name for the layer blob, archived first: the blob itself becomes a tar hard link.
        func size(_ blob: String) -> Int {
            ((try? FileManager.default.attributesOfItem(atPath: work + "/layout/blobs/sha256/" + blob))?[.size] as? Int) ?? 0
        }
        let layerBlob = try #require(blobs.max { size($0) < size($1) })
        try Sys.sh("cd '\(work)/layout' && ln blobs/sha256/\(layerBlob) aaa-copy && tar --sort=name -cf ../image.tar . && rm aaa-copy")
        #expect(try Sys.sh("tar -tvf '\(work)/image.tar' | grep -c ' link to '").stdout.hasPrefix("1"), "the archive holds a hard link")
        let r = try Sys.wyrcan(["convert", "oci-archive:\(work)/image.tar:small", "-o", work + "/out", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try String(contentsOfFile: work + "/out/cmdline", encoding: .utf8) == "console=ttyS0\n")
        let fromLayout = try Sys.wyrcan(["convert", "oci:\(work)/layout:small", "-o", work + "/out2", "--quiet"])
        #expect(fromLayout.status == 0, "\(fromLayout.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: work + "/layout/blobs/sha256").sorted() == blobs)
    }
}
