import WyrcanChain
#if canImport(Glibc)
import Glibc
#endif

/// `wyr.cache` at boot: finds the cache disk (or formats a blank one when told to), mounts it for
/// the volume hooks and unmounts it before kexec, so the next system mounts a clean filesystem.
struct CacheDisk {
    let device: BlockDevice
    let filesystem: BlockDevice.ExtFilesystem
    /// Outside /run/wyrcan, which the agent clears between attempts.
    static let mountPoint = "/run/wyrcan-cache"
    static let storageModules = "/etc/wyrcan/modules.storage"
    static let mkfs = "/sbin/mke2fs"

    /// The disk `spec` names, mounted; nil when `auto` finds no disk labelled WYRCAN_CACHE.
    static func open(_ spec: CacheSpec) throws(BootAgent.BootFailure) -> CacheDisk? {
        Console.stage("Opening the cache disk (wyr.cache=\(spec.rendered))")
        for problem in ModuleLoader(wanted: storageModules, loadEverything: true).loadAll() { Console.detail("module \(problem)") }
        let device: BlockDevice
        var filesystem: BlockDevice.ExtFilesystem?
        switch spec.source {
        case .auto:
            // Disk drivers probe asynchronously (AHCI, NVMe, USB): look for a few seconds.
            var found: (BlockDevice, BlockDevice.ExtFilesystem)?
            for _ in 0..<10 where found == nil {
                for candidate in BlockDevice.all() {
                    if let fs = try? candidate.extFilesystem(), fs.label == CacheSpec.label { found = (candidate, fs); break }
                }
                if found == nil { usleep(500_000) }
            }
            guard let found else {
                Console.detail("no disk labelled \(CacheSpec.label): the volumes stay in RAM")
                return nil
            }
            (device, filesystem) = found
        case .device(let path):
            var waited = 0
            while !FileSystem.exists(path) && waited < 20 { usleep(500_000); waited += 1 }
            guard FileSystem.exists(path) else {
                throw .init(description: "wyr.cache=\(path): no such device (disks here: \(BlockDevice.all().map(\.path).joined(separator: " ")))", retryable: false)
            }
            device = BlockDevice(path: path)
            do throws(FileError) { filesystem = try device.extFilesystem() } catch {
                throw .init(description: "wyr.cache=\(path): \(error)", retryable: false)
            }
            if filesystem == nil { filesystem = try format(device, allowed: spec.format) }
        }
        try? LinuxSystem.unmount(mountPoint)
        do throws(SystemError) { try LinuxSystem.mount(device.path, at: mountPoint, type: "ext4") } catch {
            throw .init(description: "wyr.cache=\(device.path): \(error)", retryable: false)
        }
        let disk = CacheDisk(device: device, filesystem: filesystem!)
        Console.detail("\(device.path) (label \(disk.filesystem.label.isEmpty ? "none" : disk.filesystem.label), UUID \(disk.filesystem.uuid)) mounted")
        return disk
    }

    /// Formats `device` as ext4 labelled WYRCAN_CACHE, but only a blank one and only when allowed.
    private static func format(_ device: BlockDevice, allowed: Bool) throws(BootAgent.BootFailure) -> BlockDevice.ExtFilesystem {
        let blank: Bool
        do throws(FileError) { blank = try device.isBlank() } catch {
            throw .init(description: "wyr.cache=\(device.path): \(error)", retryable: false)
        }
        guard blank else {
            throw .init(description: "wyr.cache=\(device.path): holds data that is not an ext2/3/4 filesystem (a partition table? name the partition, e.g. \(device.path)1); Wyrcan formats only blank disks, wipe it yourself (wipefs -a) if it may go", retryable: false)
        }
        guard allowed else {
            throw .init(description: "wyr.cache=\(device.path): the disk is blank; add ,format (wyr.cache=\(device.path),format) to let Wyrcan format it", retryable: false)
        }
        Console.detail("formatting \(device.path) (ext4, label \(CacheSpec.label))")
        let status = Subprocess.run(mkfs, ["-q", "-F", "-t", "ext4", "-L", CacheSpec.label, "-E", "lazy_itable_init=1,lazy_journal_init=1", device.path])
        guard status == 0, let fs = try? device.extFilesystem() else {
            throw .init(description: "wyr.cache=\(device.path): mke2fs failed (exit \(status))", retryable: false)
        }
        return fs
    }

    /// Where volume `name` lives while Wyrcan has the disk mounted.
    func directory(for name: String) -> String { Self.mountPoint + "/" + CacheSpec.volumeDirectory(name) }

    /// Flushes and unmounts; the next system mounts the disk again by its UUID.
    func close() {
        sync()
        do throws(SystemError) { try LinuxSystem.unmount(Self.mountPoint) } catch { Console.failure(error.description) }
    }
}
