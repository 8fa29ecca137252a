import WyrcanChain
#if canImport(Glibc)
import Glibc
#endif

/// The volume hooks' side of `wyr.cache`: volumes kept on the cache disk across boots, and what
/// the next system needs to mount them.
extension VolumeHooks {
    /// A volume on the cache disk: first push what the previous boot changed (push_on=boot), then
    /// pull. A failed push keeps the data on the disk and the boot goes on; it is retried next boot.
    /// `expiration=shutdown` empties the volume only once nothing unpushed can be in it: a volume
    /// without a mirror or push events is scratch space; one that pushes is pushed here first
    /// (even without push_on=boot — its shutdown push may not have happened) and kept if that fails.
    func onCache(_ volume: VolumeSpec, _ cache: CacheDisk) throws(BootAgent.BootFailure) {
        let directory = cache.directory(for: volume.name)
        do throws(FileError) { try FileSystem.createDirectory(directory) } catch { throw .init(description: error.description) }
        let pushes = volume.mirror != nil && !volume.pushOn.isEmpty
        var pushFailed = false
        if pushes && (volume.pushOn.contains(.boot) || volume.expiration == .shutdown) {
            Console.stage("Pushing volume \(volume.name) (what the previous boot changed) to \(volume.mirror!)")
            let mirror = VolumeMirror(volume: volume, client: try client(for: volume), directory: directory) { Console.detail($0) }
            do throws(VolumeError) { Console.detail(try mirror.push().summary) } catch {
                pushFailed = true
                Console.failure("volume \(volume.name): push failed, its data stays on \(cache.device.path) for the next boot: \(error)")
            }
        }
        if volume.expiration == .shutdown && pushFailed {
            Console.detail("volume \(volume.name): expiration=shutdown postponed, its changes are not pushed yet")
        } else if volume.expiration == .shutdown {
            // The previous boot's data ends with that boot (after it was pushed, if it pushes).
            Console.detail("volume \(volume.name): expiration=shutdown, the previous boot's data is removed")
            FileSystem.removeTree(directory)
            do throws(FileError) { try FileSystem.createDirectory(directory) } catch { throw .init(description: error.description) }
        }
        if volume.pullOn.contains(.boot) { try pull(volume, into: directory) }
    }

    /// The next system mounts the cache disk by UUID and binds each volume at its path:
    /// /usr/lib/wyrcan/mount-volumes (any init; `--unmount` undoes it) and a systemd unit running it.
    func injectMounts(_ cache: CacheDisk) throws(FileError) {
        let root = CacheSpec.mountPoint
        var mounts: [String] = []
        var unmounts: [String] = []
        for volume in args.volumes {
            let source = Shell.quote(root + "/" + CacheSpec.volumeDirectory(volume.name))
            let target = Shell.quote(volume.path)
            mounts.append("mkdir -p \(target) && { mounted \(target) || mount --bind \(source) \(target); } || status=1")
            unmounts.insert("umount \(target) 2>/dev/null", at: 0)
            try FileSystem.createDirectory(overlay + volume.path)
        }
        let uuid = cache.filesystem.uuid
        try FileSystem.createDirectory(overlay + "/usr/lib/wyrcan")
        try FileSystem.writeFile(overlay + Self.mountScript, Array("""
            #!/bin/sh
            # Written by Wyrcan at boot (wyr.cache): mounts the cache disk and binds each volume on it
            # at its path; with --unmount, undoes that. systemd runs it from \(Self.cacheUnit); another
            # init should run it early, and with --unmount before it powers off.
            cache=\(root)
            mounted() { grep -q " $1 " /proc/mounts; }
            if [ "$1" = --unmount ]; then
              \(unmounts.joined(separator: "\n  "))
              umount "$cache" 2>/dev/null
              exit 0
            fi
            modprobe crc32c 2>/dev/null; modprobe ext4 2>/dev/null
            mkdir -p "$cache"
            n=0
            until mounted "$cache" || mount -t ext4 UUID=\(uuid) "$cache" 2>/dev/null; do
              n=$((n + 1))
              if [ $n -ge 60 ]; then echo "wyrcan: the cache disk (UUID=\(uuid)) did not appear" >&2; exit 1; fi
              sleep 1
            done
            status=0
            \(mounts.joined(separator: "\n"))
            exit $status

            """.utf8), mode: 0o755)
        let unit = """
            [Unit]
            Description=Wyrcan cache disk and the volumes on it (wyr.cache)
            DefaultDependencies=no
            Before=local-fs.target umount.target
            Conflicts=umount.target

            [Service]
            Type=oneshot
            RemainAfterExit=yes
            ExecStart=\(Self.mountScript)
            ExecStop=\(Self.mountScript) --unmount
            TimeoutStartSec=90

            [Install]
            WantedBy=local-fs.target

            """
        try installUnit(Self.cacheUnit, unit, wantedBy: "local-fs.target")
    }
}

/// POSIX shell quoting for the scripts Wyrcan writes.
enum Shell {
    static func quote(_ text: String) -> String {
        "'" + text.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
    }
}
