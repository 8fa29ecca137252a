import Foundation
import Testing

/// Helpers for system tests: processes, fixtures and local servers, all on loopback.
enum Sys {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let fixtures = root + "/Tests/Fixtures"

    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    @discardableResult
    static func run(_ executable: String, _ arguments: [String], cwd: String? = nil, environment: [String: String]? = nil) throws -> Output {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        if let environment { p.environment = environment }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        final class Box: @unchecked Sendable { var data = Data() }
        let o = Box()
        let group = DispatchGroup()
        group.enter()
        let reader = out.fileHandleForReading
        DispatchQueue.global().async { o.data = reader.readDataToEndOfFile(); group.leave() }
        let e = err.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        p.waitUntilExit()
        return Output(status: p.terminationStatus, stdout: String(decoding: o.data, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    @discardableResult
    static func sh(_ command: String) throws -> Output { try run("/bin/sh", ["-c", command]) }

    /// A FAT disk image (no partition table, as firmware reads a removable disk) at `image`
    /// holding `files` (source file → path on the disk, e.g. `EFI/BOOT/BOOTX64.EFI`).
    static func fatDisk(_ image: String, label: String, kilobytes: Int = 65536, files: [(source: String, path: String)]) throws -> String {
        var directories: [String] = []
        for file in files {
            var parts = file.path.split(separator: "/").dropLast().map(String.init)
            var chain: [String] = []
            while !parts.isEmpty { chain.append(parts.joined(separator: "/")); parts.removeLast() }
            for d in chain.reversed() where !directories.contains(d) { directories.append(d) }
        }
        var script = "set -e\nrm -f '\(image)'\nmkfs.vfat -C -n \(label) '\(image)' \(kilobytes) >/dev/null\n"
        if !directories.isEmpty { script += "mmd -i '\(image)' " + directories.map { "::/\($0)" }.joined(separator: " ") + "\n" }
        for file in files { script += "mcopy -i '\(image)' '\(file.source)' ::/\(file.path)\n" }
        try succeeded(try sh(script), "FAT disk \(image)")
        return image
    }

    /// Throws, with its output, when a setup command (`what`) failed.
    static func succeeded(_ r: Output, _ what: String) throws {
        guard r.status == 0 else { throw SysError("\(what): \(r.stderr)\(r.stdout)") }
    }

    static func binary(_ name: String) -> String {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [dir.appendingPathComponent(name).path, root + "/.build/debug/\(name)"]
        where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        return root + "/.build/debug/\(name)"
    }

    static func wyrcan(_ arguments: [String]) throws -> Output { try run(binary("wyrcan"), arguments) }

    /// This test process's scratch root, `$TMPDIR/wyrcan-sys-PID`: removed when the process exits
    /// (unless `WYRCAN_KEEP_TEST_DIRS` is set, to look at a failure), and swept by a later run if
    /// the process died first. Images, registries and QEMU disks add up to gigabytes per run.
    static let scratchRoot: String = {
        let tmp = FileManager.default.temporaryDirectory.path
        let root = "\(tmp)/wyrcan-sys-\(getpid())"
        sweepStaleScratch(in: tmp)
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        if !keepScratch {
            atexit { try? FileManager.default.removeItem(atPath: Sys.scratchRoot) }
        }
        return root
    }()

    /// `WYRCAN_KEEP_TEST_DIRS` is set: no scratch directory is removed.
    private static let keepScratch = ProcessInfo.processInfo.environment["WYRCAN_KEEP_TEST_DIRS"] != nil

    /// Removes `wyrcan-sys-PID…` entries whose process is gone (also the older flat
    /// `wyrcan-sys-PID-NAME` layout).
    private static func sweepStaleScratch(in tmp: String) {
        guard !keepScratch, let names = try? FileManager.default.contentsOfDirectory(atPath: tmp) else { return }
        for name in names where name.hasPrefix("wyrcan-sys-") {
            let digits = name.dropFirst("wyrcan-sys-".count).prefix { $0.isNumber }
            guard let pid = Int32(digits), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            try? FileManager.default.removeItem(atPath: "\(tmp)/\(name)")
        }
    }

    static func tempDir(_ name: String) throws -> String {
        let dir = "\(scratchRoot)/\(name)"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func freePort() -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return UInt16(bigEndian: addr.sin_port)
    }

    /// Builds an OCI layout from a spec (see Tests/Fixtures/ociimage.py); returns the top digest.
    @discardableResult
    static func buildImage(_ spec: String, layout: String, gzipOnly: Bool = false) throws -> String {
        let specPath = layout + ".spec.json"
        try spec.write(toFile: specPath, atomically: true, encoding: .utf8)
        let r = try run("/usr/bin/python3", [fixtures + "/ociimage.py", specPath, layout] + (gzipOnly ? ["--gzip-only"] : []))
        guard r.status == 0 else { throw SysError("ociimage.py failed: \(r.stderr)") }
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Runs `executable` until its `console` file shows any of `until` (then stops it, by PID),
    /// it exits, or `timeout` seconds pass; returns the console text.
    static func runUntil(_ executable: String, _ arguments: [String], console: String, until: [String], timeout: Double) throws -> String {
        try? FileManager.default.removeItem(atPath: console)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer {
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
        }
        func text() -> String { (try? String(contentsOfFile: console, encoding: .utf8)) ?? "" }
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline {
            if until.contains(where: text().contains) {
                usleep(500_000)  // (the rest of that line)
                break
            }
            usleep(250_000)
        }
        return text()
    }

    static func waitFor(_ what: String, seconds: Double = 20, _ ready: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if ready() { return }
            usleep(100_000)
        }
        throw SysError("\(what) did not come up within \(Int(seconds)) s")
    }
}

/// A rig built once per test process, when the first test asks (suites run in parallel: the
/// lock makes the others wait for it), whose server is stopped by PID when the process exits.
final class SharedRig<Rig: AnyObject>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Rig?
    private let build: () throws -> Rig
    private let server: (Rig) -> Background

    init(build: @escaping () throws -> Rig, server: @escaping (Rig) -> Background) {
        self.build = build
        self.server = server
    }

    func get() throws -> Rig {
        lock.lock()
        defer { lock.unlock() }
        if let value { return value }
        let rig = try build()
        value = rig
        SharedRigPIDs.add(server(rig).process.processIdentifier)
        return rig
    }
}

/// The PIDs `SharedRig`s stop at exit (outside the generic class: a C callback cannot reach it).
enum SharedRigPIDs {
    nonisolated(unsafe) private static var pids: [Int32] = []
    private static let lock = NSLock()
    private static let registerOnce: Void = { atexit { for pid in SharedRigPIDs.all() { kill(pid, SIGTERM) } } }()

    static func add(_ pid: Int32) {
        _ = registerOnce
        lock.lock(); pids.append(pid); lock.unlock()
    }

    static func all() -> [Int32] { lock.lock(); defer { lock.unlock() }; return pids }
}

struct SysError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A background process stopped (by PID) when the value goes away.
final class Background {
    let process = Process()
    let log: String

    init(_ executable: String, _ arguments: [String], log: String) throws {
        self.log = log
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = FileHandle(forWritingAtPath: log)!
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    /// SIGTERM, then SIGKILL after 3 s (a child may inherit an ignored SIGTERM from the runner).
    func stop() {
        guard process.isRunning else { return }
        let pid = process.processIdentifier
        kill(pid, SIGTERM)
        for _ in 0..<30 where process.isRunning { usleep(100_000) }
        if process.isRunning { kill(pid, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { stop() }
}

/// Debian's docker-registry on 127.0.0.1, optionally with TLS and htpasswd (Basic) auth.
final class LocalRegistry {
    let port: UInt16
    let dir: String
    let server: Background
    let tls: Bool
    var host: String { "127.0.0.1:\(port)" }

    init(name: String, pki: TestPKI? = nil, htpasswd: (String, String)? = nil) throws {
        dir = try Sys.tempDir("registry-\(name)")
        port = Sys.freePort()
        tls = pki != nil
        var config = """
            version: 0.1
            log:
              level: error
              accesslog:
                disabled: true
            storage:
              filesystem:
                rootdirectory: \(dir)/data
              delete:
                enabled: true
              redirect:
                disable: true
            http:
              addr: 127.0.0.1:\(port)
              secret: wyrcan-test

            """
        if let pki {
            config += "  tls:\n    certificate: \(pki.serverCert)\n    key: \(pki.serverKey)\n"
        }
        if let (user, pass) = htpasswd {
            let r = try Sys.run("/usr/bin/htpasswd", ["-Bbn", user, pass])
            try r.stdout.write(toFile: dir + "/htpasswd", atomically: true, encoding: .utf8)
            config += "auth:\n  htpasswd:\n    realm: wyrcan-test\n    path: \(dir)/htpasswd\n"
        }
        try config.write(toFile: dir + "/config.yml", atomically: true, encoding: .utf8)
        server = try Background("/usr/bin/docker-registry", ["serve", dir + "/config.yml"], log: dir + "/registry.log")
        let scheme = tls ? "https" : "http"
        let port = self.port
        try Sys.waitFor("docker-registry on \(port)") {
            let r = try? Sys.sh("curl -sk -o /dev/null -w '%{http_code}' \(scheme)://127.0.0.1:\(port)/v2/")
            return r?.stdout == "200" || r?.stdout == "401"
        }
    }

    /// Pushes a local OCI layout with skopeo (daemon-less).
    func push(layout: String, tag: String, to repository: String, credentials: (String, String)? = nil) throws {
        var args = ["copy", "--quiet", "--dest-tls-verify=false", "oci:\(layout):\(tag)", "docker://\(host)/\(repository):\(tag)"]
        if let (u, p) = credentials { args.insert("--dest-creds=\(u):\(p)", at: 1) }
        let r = try Sys.run("/usr/bin/skopeo", args)
        guard r.status == 0 else { throw SysError("skopeo push failed: \(r.stderr)") }
    }

    /// The stored blob file (to corrupt it on purpose).
    func blobPath(_ digest: String) -> String {
        let hex = String(digest.dropFirst(7))
        return "\(dir)/data/docker/registry/v2/blobs/sha256/\(hex.prefix(2))/\(hex)/data"
    }

    deinit { server.stop() }
}

/// Tests/Fixtures/flakyregistry.py serving a layout with the given misbehaviours; stopped by PID
/// when the value goes away.
final class FlakyRegistry {
    let server: Background
    let host: String

    init(layout: String, flags: [String]) throws {
        let portFile = layout + ".port"
        try? FileManager.default.removeItem(atPath: portFile)
        server = try Background("/usr/bin/python3", [Sys.fixtures + "/flakyregistry.py", layout, portFile] + flags, log: layout + ".flaky.log")
        try Sys.waitFor("flaky registry") { FileManager.default.fileExists(atPath: portFile) }
        host = "127.0.0.1:" + (try String(contentsOfFile: portFile, encoding: .utf8))
    }

    deinit { server.stop() }
}

/// A throw-away CA and a server certificate for 127.0.0.1, in a directory of its own (suites
/// run in parallel: one's set-up must not remake the CA another is using).
struct TestPKI {
    let dir: String
    var caCert: String { dir + "/ca.crt" }
    var serverCert: String { dir + "/server.crt" }
    var serverKey: String { dir + "/server.key" }

    init(name: String, caName: String = "wyrcan test CA") throws {
        dir = try Sys.tempDir(name)
        let script = """
            set -e
            cd '\(dir)'
            openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj '/CN=\(caName)' 2>/dev/null
            openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj '/CN=127.0.0.1' 2>/dev/null
            printf 'subjectAltName=IP:127.0.0.1,IP:10.0.2.2,DNS:localhost\\nbasicConstraints=CA:FALSE\\n' > ext.cnf
            openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile ext.cnf 2>/dev/null
            """
        let r = try Sys.sh(script)
        guard r.status == 0 else { throw SysError("openssl failed: \(r.stderr)") }
    }
}
