#if canImport(Glibc)
import Glibc
#endif

/// Why a volume transfer did not complete.
public enum VolumeError: Error, CustomStringConvertible, Sendable {
    case s3(S3Error)
    case file(FileError)
    case noMirror(volume: String)
    /// Some files failed (after retries); the others were transferred and recorded.
    case incomplete(volume: String, failures: [String])

    public var description: String {
        switch self {
        case .s3(let e): return e.description
        case .file(let e): return e.description
        case .noMirror(let volume): return "volume \(volume) has no mirror=ALIAS/BUCKET"
        case .incomplete(let volume, let failures):
            return "volume \(volume): \(failures.count) file(s) not transferred (local data kept; run again to retry): "
                + failures.prefix(3).joined(separator: "; ") + (failures.count > 3 ? "; …" : "")
        }
    }
}

/// Mirrors a volume directory with its bucket, with `mcli mirror`'s `overwrite` and `remove`
/// semantics made safe by a sync state (see `SyncState`):
/// - a file missing on the destination is copied; one that is the same is left alone;
/// - one that differs is replaced only with `overwrite`, and only if the destination was not
///   changed since the last sync: when both sides changed, the remote keeps its name and the
///   local edit is kept beside it as `NAME.conflict-TIMESTAMP` (locally on pull, as an object on push);
/// - with `remove`, only what the last sync saw on both sides is deleted; never anything that was
///   not known on the other side.
public struct VolumeMirror: Sendable {
    public var volume: VolumeSpec
    public var client: S3Client
    public var directory: String
    public var width = 8
    public var log: @Sendable (String) -> Void

    public struct Report: Sendable, Equatable {
        public var listings = 0
        public var uploaded = 0
        public var downloaded = 0
        public var bytes: Int64 = 0
        public var deletedRemote = 0
        public var deletedLocal = 0
        public var unchanged = 0
        public var kept = 0
        public var conflicts = 0
        public var failures: [String] = []

        public var summary: String {
            "\(uploaded) uploaded, \(downloaded) downloaded (\(TransferProgress.megabytes(bytes))), \(unchanged) unchanged, "
                + "\(deletedRemote) deleted remotely, \(deletedLocal) deleted locally, \(kept) kept, \(conflicts) conflicts, \(listings) listing(s)"
        }
    }

    public init(volume: VolumeSpec, client: S3Client, directory: String, log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.volume = volume
        self.client = client
        self.directory = directory
        self.log = log
    }

    var mirror: VolumeSpec.Mirror { volume.mirror! }

    func key(_ rel: String) -> String { mirror.prefix.isEmpty ? rel : mirror.prefix + "/" + rel }

    /// Lists the mirror once; keys become paths relative to the prefix.
    func remoteFiles() throws(VolumeError) -> [String: S3Object] {
        let prefix = mirror.prefix.isEmpty ? "" : mirror.prefix + "/"
        let objects: [S3Object]
        do throws(S3Error) { objects = try client.list(bucket: mirror.bucket, prefix: prefix) } catch { throw .s3(error) }
        var out: [String: S3Object] = [:]
        for object in objects {
            let rel = String(object.key.dropFirst(prefix.count))
            // Folder markers and keys that would escape the volume are not files of it.
            guard LocalTree.isSafe(rel) else { continue }
            out[rel] = object
        }
        return out
    }

    /// Whether the local file holds what the object holds. With a state entry this is exact and
    /// cheap; without one (first sync) sizes are compared, then contents by MD5 when the ETag is one.
    func isSame(_ rel: String, _ local: LocalTree.File, _ object: S3Object, _ entry: SyncState.Entry?) -> Bool {
        if let entry, entry.etag == object.etag, entry.size == local.size, entry.mtime == local.mtime { return true }
        guard local.size == object.size else { return false }
        if entry != nil, entry?.etag != object.etag || entry?.mtime != local.mtime { return false }
        guard S3Client.isPlainMD5(object.etag) else { return true }
        guard let file = try? FileHandleFD.read(directory + "/" + rel) else { return false }
        return (try? S3Client.md5(file, size: local.size)) == object.etag.lowercased()
    }

    static func conflictSuffix() -> String { ".conflict-" + S3Signer.timestamps(time(nil)).1 }

    /// Runs the planned transfers concurrently, recording each success in the state.
    func run(_ tasks: [@Sendable () -> VolumeError?], report: Locked<Report>) {
        let log = self.log
        _ = try? Parallel.map(tasks.count, width: width) { (i) throws(VolumeError) -> Bool in
            if let error = tasks[i]() {
                log("  ✗ \(error)")
                report.withLock { $0.failures.append(error.description) }
            }
            return true
        }
    }

    /// Runs a pull or push holding an exclusive lock on the directory, so the watcher and a
    /// shutdown push (or two commands) never interleave on one volume and its state.
    func exclusive<T>(_ body: () throws(VolumeError) -> T) throws(VolumeError) -> T {
        let lockPath = directory + "/.wyrcan-sync.lock"
        do throws(FileError) { try FileSystem.createDirectory(directory) } catch { throw .file(error) }
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .file(.last("open", lockPath)) }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else { throw .file(.last("flock", lockPath)) }
        }
        return try body()
    }

    func finish(_ state: Locked<SyncState>, _ report: Locked<Report>) throws(VolumeError) -> Report {
        do throws(FileError) {
            try FileSystem.createDirectory(directory)
            try state.withLock { $0 }.save(directory: directory)
        } catch { throw .file(error) }
        let result = report.withLock { $0 }
        guard result.failures.isEmpty else { throw .incomplete(volume: volume.name, failures: result.failures) }
        return result
    }
}
