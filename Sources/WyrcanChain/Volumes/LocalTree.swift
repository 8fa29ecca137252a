#if canImport(Glibc)
import Glibc
#endif

/// The regular files of a volume directory, keyed by their path relative to it.
struct LocalTree {
    struct File: Equatable {
        var size: Int64
        /// Nanoseconds since the epoch.
        var mtime: Int64
    }

    var files: [String: File] = [:]
    /// What a bucket cannot hold (symlinks, devices, sockets…), relative paths.
    var skipped: [String] = []

    /// Walks `root` without following symlinks; Wyrcan's own bookkeeping files are left out.
    static func scan(_ root: String) throws(FileError) -> LocalTree {
        var tree = LocalTree()
        guard FileSystem.isDirectory(root) else { return tree }
        try walk(root, relative: "", into: &tree)
        return tree
    }

    private static func walk(_ directory: String, relative: String, into tree: inout LocalTree) throws(FileError) {
        for name in try FileSystem.list(directory) {
            let rel = relative.isEmpty ? name : relative + "/" + name
            // Wyrcan's own bookkeeping: the sync state (and its temporary files), the lock,
            // partial downloads.
            if relative.isEmpty && name.hasPrefix(".wyrcan-sync") { continue }
            if name.hasPrefix(".wyrcan-partial.") { continue }
            let path = directory + "/" + name
            var st = Glibc.stat()
            guard lstat(path, &st) == 0 else {
                if errno == ENOENT { continue }   // removed while we looked: not part of this sync
                throw .last("stat", path)
            }
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                do throws(FileError) { try walk(path, relative: rel, into: &tree) } catch where error.code == ENOENT { continue }
            case S_IFREG: tree.files[rel] = File(size: Int64(st.st_size), mtime: nanoseconds(st.st_mtim))
            default: tree.skipped.append(rel)
            }
        }
    }

    static func nanoseconds(_ t: timespec) -> Int64 { Int64(t.tv_sec) * 1_000_000_000 + Int64(t.tv_nsec) }

    static func status(_ path: String) -> File? {
        var st = Glibc.stat()
        guard stat(path, &st) == 0 else { return nil }
        return File(size: Int64(st.st_size), mtime: nanoseconds(st.st_mtim))
    }

    /// Sets a file's modification time to `seconds` since the epoch.
    static func setModificationTime(_ path: String, seconds: Int64) {
        var times = [timespec(tv_sec: Int(seconds), tv_nsec: 0), timespec(tv_sec: Int(seconds), tv_nsec: 0)]
        _ = utimensat(AT_FDCWD, path, &times, 0)
    }

    /// The first parent directory of `rel` (inside `root`) that is a symlink, if any.
    static func symlinkedParent(of rel: String, in root: String) -> String? {
        var current = ""
        for part in rel.split(separator: "/").dropLast() {
            current += current.isEmpty ? String(part) : "/" + part
            var st = Glibc.stat()
            if lstat(root + "/" + current, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK { return current }
        }
        return nil
    }

    /// `exclude=GLOB` matches the whole relative path or its last component (fnmatch rules).
    static func isExcluded(_ rel: String, by globs: [String]) -> Bool {
        let base = rel.split(separator: "/").last.map(String.init) ?? rel
        return globs.contains { fnmatch($0, rel, 0) == 0 || fnmatch($0, base, 0) == 0 }
    }

    /// A relative path that stays inside the volume (no '..', no empty or absolute parts).
    static func isSafe(_ rel: String) -> Bool {
        !rel.isEmpty && !rel.hasPrefix("/") && !rel.hasSuffix("/")
            && !rel.split(separator: "/", omittingEmptySubsequences: false).contains { $0.isEmpty || $0 == "." || $0 == ".." }
    }
}
