#if canImport(Glibc)
import Glibc
#endif

/// A failed file-system call, with the path and the system's reason.
public struct FileError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let path: String
    public let code: Int32
    /// Said instead of the system's text for `code`, when Wyrcan refused the file itself.
    public var reason: String? = nil
    public var description: String { "\(operation) \(path): \(cause)" }
    /// Wyrcan's reason, or the system's text for `code`.
    public var cause: String { reason ?? String(cString: strerror(code)) }

    public init(operation: String, path: String, code: Int32, reason: String? = nil) {
        self.operation = operation
        self.path = path
        self.code = code
        self.reason = reason
    }

    public static func last(_ operation: String, _ path: String) -> FileError {
        FileError(operation: operation, path: path, code: errno)
    }
}

/// An open file descriptor, closed when the value is released.
public final class FileHandleFD {
    public let fd: Int32
    public let path: String

    public init(path: String, flags: Int32, mode: mode_t = 0o644) throws(FileError) {
        let fd = open(path, flags | O_CLOEXEC, mode)
        guard fd >= 0 else { throw .last("open", path) }
        self.fd = fd
        self.path = path
    }

    public static func create(_ path: String, mode: mode_t = 0o644) throws(FileError) -> FileHandleFD {
        try FileHandleFD(path: path, flags: O_WRONLY | O_CREAT | O_TRUNC, mode: mode)
    }

    public static func read(_ path: String) throws(FileError) -> FileHandleFD {
        try FileHandleFD(path: path, flags: O_RDONLY)
    }

    deinit { close(fd) }

    public func write(_ bytes: UnsafeRawBufferPointer) throws(FileError) {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw .last("write", path)
            }
            offset += n
        }
    }

    public func write(_ bytes: [UInt8]) throws(FileError) {
        var failure: FileError? = nil
        bytes.withUnsafeBytes { b in
            do throws(FileError) { try write(b) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    public func truncate(to length: Int64) throws(FileError) {
        guard ftruncate(fd, off_t(length)) == 0, lseek(fd, off_t(length), SEEK_SET) >= 0 else { throw .last("truncate", path) }
    }

    /// Reads up to `count` bytes; an empty result means end of file.
    public func read(upTo count: Int) throws(FileError) -> [UInt8] {
        while true {
            // Read straight into the result: one allocation, not zeroed, not copied.
            var n = 0
            var error: Int32 = 0
            let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
                n = Glibc.read(fd, buffer.baseAddress, count)
                error = n < 0 ? errno : 0
                initialized = max(n, 0)
            }
            if n < 0 {
                if error == EINTR { continue }
                throw FileError(operation: "read", path: path, code: error)
            }
            return bytes
        }
    }

    /// Copies what is left of this file to `output`, a megabyte at a time.
    public func copyRemaining(to output: FileHandleFD) throws(FileError) {
        while true {
            let chunk = try read(upTo: 1 << 20)
            if chunk.isEmpty { return }
            try output.write(chunk)
        }
    }

    public func readAll(maximumBytes: Int = .max) throws(FileError) -> [UInt8] {
        var out: [UInt8] = []
        while true {
            let chunk = try read(upTo: 1 << 16)
            if chunk.isEmpty { return out }
            guard out.count + chunk.count <= maximumBytes else {
                throw FileError(operation: "read", path: path, code: EFBIG, reason: "longer than the \(maximumBytes) bytes expected")
            }
            out += chunk
        }
    }

    /// Opens `path` for reading only if it is a regular file (not a FIFO, which would block,
    /// nor a device such as /dev/zero, which never ends), and at most `maximumBytes` long when
    /// given; a symlink is followed to what it names, which must pass the same checks.
    public static func readRegular(_ path: String, maximumBytes: Int64? = nil) throws(FileError) -> FileHandleFD {
        // O_NONBLOCK: opening a FIFO must not wait for a writer; reads of a regular file ignore it.
        let file = try FileHandleFD(path: path, flags: O_RDONLY | O_NONBLOCK)
        var st = stat()
        guard fstat(file.fd, &st) == 0 else { throw .last("stat", path) }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw FileError(operation: "read", path: path, code: EINVAL, reason: "not a regular file")
        }
        if let maximumBytes, Int64(st.st_size) > maximumBytes {
            throw FileError(operation: "read", path: path, code: EFBIG, reason: "\(st.st_size) bytes, more than the \(maximumBytes) expected")
        }
        return file
    }
}

/// Small file-system helpers over libc (no full Foundation in the boot agent).
public enum FileSystem {
    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    public static func size(_ path: String) -> Int64? {
        var st = stat()
        return stat(path, &st) == 0 ? Int64(st.st_size) : nil
    }

    public static func readFile(_ path: String) throws(FileError) -> [UInt8] {
        try FileHandleFD.read(path).readAll()
    }

    /// A small file that an image or a user supplied (a layout's index.json, a manifest): a
    /// regular file of at most `maximumBytes`.
    public static func readRegularFile(_ path: String, maximumBytes: Int) throws(FileError) -> [UInt8] {
        try FileHandleFD.readRegular(path, maximumBytes: Int64(maximumBytes)).readAll(maximumBytes: maximumBytes)
    }

    public static func writeFile(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws(FileError) {
        try FileHandleFD.create(path, mode: mode).write(bytes)
    }

    /// mkdir -p
    public static func createDirectory(_ path: String, mode: mode_t = 0o755) throws(FileError) {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, mode) != 0 && errno != EEXIST { throw .last("mkdir", current) }
        }
    }

    public static func rename(_ from: String, _ to: String) throws(FileError) {
        guard Glibc.rename(from, to) == 0 else { throw .last("rename", "\(from) -> \(to)") }
    }

    /// A second name for the file at `existing`.
    public static func hardLink(_ existing: String, _ path: String) throws(FileError) {
        guard link(existing, path) == 0 else { throw .last("link \(existing) to", path) }
    }

    public static func remove(_ path: String) { unlink(path) }

    /// Bytes an unprivileged writer can still use on the filesystem holding `path`.
    public static func freeSpace(_ path: String) -> Int64? {
        var st = statvfs()
        guard statvfs(path, &st) == 0 else { return nil }
        return Int64(st.f_bavail) * Int64(st.f_frsize)
    }

    /// The names in a directory, without "." and "..".
    public static func list(_ path: String) throws(FileError) -> [String] {
        guard let dir = opendir(path) else { throw .last("opendir", path) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// rm -rf for a directory Wyrcan created (does not follow symlinks).
    public static func removeTree(_ path: String) {
        guard let names = try? list(path) else { unlink(path); return }
        for name in names {
            let child = path + "/" + name
            var st = stat()
            if lstat(child, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR { removeTree(child) } else { unlink(child) }
        }
        rmdir(path)
    }

    public static func temporaryDirectory(in parent: String = "/tmp", prefix: String = "wyrcan") throws(FileError) -> String {
        var template = Array("\(parent)/\(prefix).XXXXXX".utf8CString)
        guard let p = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw .last("mkdtemp", parent)
        }
        return String(cString: p)
    }
}
