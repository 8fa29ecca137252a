import CWyrcanSys
#if canImport(Glibc)
import Glibc
#endif

/// A failed Linux system call, with what Wyrcan was doing.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let code: Int32
    public var description: String { "\(operation): \(String(cString: strerror(code)))" }

    static func last(_ operation: String) -> SystemError { SystemError(operation: operation, code: errno) }
}

/// The boot agent's view of the kernel: mounts, modules, kexec, reboot.
public enum LinuxSystem {
    /// Mounts `source` of `type` at `target` (creating it); EBUSY (already mounted) is fine.
    public static func mount(_ source: String, at target: String, type: String, options: String? = nil) throws(SystemError) {
        mkdir(target, 0o755)
        if Glibc.mount(source, target, type, 0, options) != 0 && errno != EBUSY {
            throw .last("mount \(type) on \(target)")
        }
    }

    /// Loads a kernel module file (`finit_module`; a `.ko.zst`/`.ko.xz`/`.ko.gz` is decompressed
    /// here and passed to `init_module`: Debian's kernel does not decompress modules itself); an
    /// already-loaded module is fine.
    public static func loadModule(_ path: String) throws(SystemError) {
        if [".zst", ".xz", ".gz"].contains(where: path.hasSuffix) {
            let image: [UInt8]
            do throws(ArchiveError) { image = try ArchiveReader.decompressedBytes(of: path) } catch {
                throw SystemError(operation: "decompress \(path) (\(error.message))", code: EINVAL)
            }
            let status = image.withUnsafeBytes { wyr_init_module($0.baseAddress, UInt($0.count), "") }
            if status != 0 && errno != EEXIST { throw .last("load module \(path)") }
            return
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .last("open \(path)") }
        defer { close(fd) }
        if wyr_finit_module(fd, "", 0) != 0 && errno != EEXIST { throw .last("load module \(path)") }
    }

    /// Stages a kernel for `reboot(LINUX_REBOOT_CMD_KEXEC)` with `kexec_file_load`.
    public static func kexecLoad(kernel: String, initrd: String, cmdline: String) throws(SystemError) {
        let k = open(kernel, O_RDONLY | O_CLOEXEC)
        guard k >= 0 else { throw .last("open \(kernel)") }
        defer { close(k) }
        let i = open(initrd, O_RDONLY | O_CLOEXEC)
        guard i >= 0 else { throw .last("open \(initrd)") }
        defer { close(i) }
        if wyr_kexec_file_load(k, i, cmdline, 0) != 0 {
            let code = errno
            // (Signature refusals under lockdown are explained by BootSecurity.kexecRefusal.)
            let hint = code == ENOEXEC ? " (not a kernel image this kernel can boot)" : ""
            throw SystemError(operation: "kexec_file_load\(hint)", code: code)
        }
    }

    /// Syncs and jumps into the staged kernel. Returns only on failure.
    public static func rebootIntoKexec() -> SystemError {
        sync()
        _ = wyr_reboot_kexec()
        return .last("reboot into the loaded kernel")
    }

    public static func restart() -> Never {
        sync()
        _ = wyr_reboot_restart()
        exit(1)
    }

    public static func powerOff() -> Never {
        sync()
        _ = wyr_reboot_power_off()
        exit(1)
    }

    /// `MemAvailable` from /proc/meminfo, in bytes.
    public static func memoryAvailable() -> Int64? { memoryInfo("MemAvailable") }

    /// The machine's RAM (`MemTotal`).
    public static func memoryTotal() -> Int64? { memoryInfo("MemTotal") }

    /// A /proc/meminfo field, in bytes.
    static func memoryInfo(_ field: String) -> Int64? {
        guard let text = try? FileSystem.readFile("/proc/meminfo") else { return nil }
        for line in String(decoding: text, as: UTF8.self).split(separator: "\n") where line.hasPrefix(field + ":") {
            let parts = line.split(separator: " ")
            if parts.count >= 2, let kb = Int64(parts[1]) { return kb * 1024 }
        }
        return nil
    }

    /// Clears `FS_IMMUTABLE_FL` (efivarfs sets it on variables) so the file can change.
    public static func clearImmutable(_ path: String) throws(SystemError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .last("open \(path)") }
        defer { close(fd) }
        var flags: Int = 0
        guard wyr_get_inode_flags(fd, &flags) == 0 else {
            // A filesystem without inode flags (not efivarfs) has nothing to clear.
            if errno == ENOTTY || errno == EOPNOTSUPP || errno == EINVAL { return }
            throw .last("read flags of \(path)")
        }
        flags &= ~wyr_fs_immutable_flag()
        guard wyr_set_inode_flags(fd, &flags) == 0 else { throw .last("clear the immutable flag of \(path)") }
    }

    /// Makes glibc hand every allocation of `bytes` or more straight back to the kernel when it
    /// is freed. Why: by default glibc raises that threshold each time such a block is freed, so
    /// the per-frame compression buffers (a few MB, allocated and freed per frame on every worker
    /// thread) end up in per-thread heaps that keep their pages; fixing it lowers `wyrcan
    /// convert`'s peak RSS with no measurable cost in time.
    public static func returnLargeAllocations(from bytes: Int = 256 << 10) {
        _ = wyr_set_mmap_threshold(Int32(bytes))
    }

    /// Online CPUs (at least 1).
    public static var processorCount: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    public static var kernelRelease: String {
        var u = utsname()
        uname(&u)
        return withUnsafePointer(to: u.release) { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
    }
}

extension LinuxSystem {
    /// Waits until the kernel's random pool is initialized (a blocking getrandom of one byte).
    /// With `idle`, the calling thread (and the entropy gathering the kernel does in it) only
    /// runs when nothing else wants the CPU.
    public static func waitForEntropy(idle: Bool = false) {
        // The thread is a pool thread: back to normal scheduling before it serves other work.
        if idle { _ = wyr_set_thread_idle(1) }
        defer { if idle { _ = wyr_set_thread_idle(0) } }
        var byte: UInt8 = 0
        _ = wyr_getrandom(&byte, 1)
    }

    /// Unmounts `target`; a path that is not mounted is fine.
    public static func unmount(_ target: String) throws(SystemError) {
        if umount2(target, 0) != 0 && errno != EINVAL && errno != ENOENT { throw .last("unmount \(target)") }
    }
}
