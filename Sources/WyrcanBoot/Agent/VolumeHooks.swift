import WyrcanChain
#if canImport(Glibc)
import Glibc
#endif

/// Wyrcan's side of `wyr.volume` (and of `wyr.report`'s `up`, +UpReport) across the kexec
/// boundary. Before kexec it builds an overlay
/// and appends it to the next initrd as one more cpio archive, which the kernel unpacks over the
/// image:
/// - `pull_on=boot`: the volume's files at its `path`, with their sync state — or, with
///   `wyr.cache`, pulled onto the cache disk instead (after `push_on=boot` sent what the previous
///   boot left there), plus /usr/lib/wyrcan/mount-volumes and a systemd unit that mount the disk
///   by UUID and bind each volume at its `path`;
/// - `push_on=changes|periodic|shutdown`: Wyrcan itself with the libraries it links (under
///   /usr/lib/wyrcan, run through its own dynamic loader so the image needs none of them),
///   /etc/wyrcan/volumes.conf (0600), a systemd unit that pushes on changes/periodically and at
///   shutdown, and /usr/lib/wyrcan/push-volumes for an init without systemd to call before it
///   powers off.
struct VolumeHooks {
    var args: WyrcanArgs
    var overlay = BootAgent.workDirectory + "/overlay"
    /// The libraries Wyrcan links, one path per line (written by scripts/build-initramfs).
    static let libraryList = "/usr/lib/wyrcan/libraries"
    static let config = "/etc/wyrcan/volumes.conf"
    static let unit = "wyrcan-volumes.service"
    static let cacheUnit = "wyrcan-cache.service"
    static let mountScript = "/usr/lib/wyrcan/mount-volumes"

    /// `wyr.report` for the booted system (nil: a Wyrcan stage boots next, or no report URL).
    var upReport: UpReport? = nil

    var pulled: [VolumeSpec] { args.volumes.filter { $0.pullOn.contains(.boot) } }
    /// Volumes the injected agent pushes (push_on=boot is Wyrcan's own, at the next boot).
    var pushed: [VolumeSpec] { args.volumes.filter { $0.pushOn.contains { $0 != .boot } } }
    var isNeeded: Bool { !pulled.isEmpty || !pushed.isEmpty || (args.cache != nil && !args.volumes.isEmpty) || upReport != nil }

    /// Builds the overlay and appends it to `initrd`, respecting the image's directories.
    func apply(toInitrd initrd: String, image: [String: ArchiveEntryInfo]) throws(BootAgent.BootFailure) {
        FileSystem.removeTree(overlay)
        do throws(FileError) { try FileSystem.createDirectory(overlay) } catch { throw .init(description: error.description) }
        defer { FileSystem.removeTree(overlay) }
        let cache = try args.cache.flatMap { spec throws(BootAgent.BootFailure) in try CacheDisk.open(spec) }
        if cache == nil && args.cache != nil {
            // wyr.cache=auto found no disk: the volumes live in RAM, where push_on=boot could
            // never run, so those volumes are pushed at shutdown instead.
            var inRAM = self
            inRAM.args.cache = nil
            for i in inRAM.args.volumes.indices where inRAM.args.volumes[i].pushOn.contains(.boot) {
                inRAM.args.volumes[i].pushOn.removeAll { $0 == .boot }
                if !inRAM.args.volumes[i].pushOn.contains(.shutdown) {
                    inRAM.args.volumes[i].pushOn.append(.shutdown)
                    Console.detail("volume \(inRAM.args.volumes[i].name): no cache disk, so pushed at shutdown instead of at the next boot")
                }
            }
            return try inRAM.apply(toInitrd: initrd, image: image)
        }
        do {
            defer { cache?.close() }
            if let cache {
                for volume in args.volumes { try onCache(volume, cache) }
            } else {
                for volume in pulled { try pull(volume, into: overlay + volume.path) }
            }
        }
        do throws(FileError) {
            if let cache { try injectMounts(cache) }
            if !pushed.isEmpty { try injectPusher(afterCache: cache != nil) }
            if let upReport {
                // (Best effort, like every report: a hook that cannot be written never stops a boot.)
                do throws(FileError) { try injectUpReport(upReport) } catch { Console.detail("no up report from the booted system: \(error)") }
            }
        } catch {
            throw .init(description: "could not prepare the hooks for the booted system: \(error)", retryable: false)
        }
        let segment = BootAgent.workDirectory + "/volumes.cpio"
        do throws(ArchiveError) { try DirectoryArchiver.archive(root: overlay, to: segment, compression: .none, over: image) } catch {
            throw .init(description: "could not archive the volumes: \(error)")
        }
        defer { FileSystem.remove(segment) }
        do throws(FileError) { try DirectoryArchiver.append(segment, to: initrd) } catch {
            throw .init(description: "could not add the volumes to the initrd: \(error)")
        }
        Console.detail("\(args.volumes.isEmpty ? "" : "volumes and ")hooks added to the initrd (\(TransferProgress.megabytes(FileSystem.size(segment) ?? 0)))")
    }

    func client(for volume: VolumeSpec) throws(BootAgent.BootFailure) -> S3Client {
        guard let name = volume.mirror?.alias, let alias = args.s3.first(where: { $0.alias == name }) else {
            throw .init(description: "volume \(volume.name): its S3 alias is not defined (wyr.s3=ALIAS,URL,KEY,SECRET)", retryable: false)
        }
        do throws(S3Error) { return try S3Client(alias: alias) } catch { throw .init(description: error.description, retryable: false) }
    }

    func pull(_ volume: VolumeSpec, into directory: String) throws(BootAgent.BootFailure) {
        Console.stage("Pulling volume \(volume.name) from \(volume.mirror!) into \(volume.path)")
        let mirror = VolumeMirror(volume: volume, client: try client(for: volume), directory: directory) { Console.detail($0) }
        do throws(VolumeError) {
            let report = try mirror.pull()
            Console.detail(report.summary)
        } catch {
            throw .init(description: "volume \(volume.name): \(error)")
        }
    }

    private func injectPusher(afterCache: Bool) throws(FileError) {
        let lib = overlay + "/usr/lib/wyrcan/lib"
        try FileSystem.createDirectory(lib)
        try copy("/usr/lib/wyrcan/wyrcan", to: overlay + "/usr/lib/wyrcan/wyrcan", mode: 0o755)
        let list = String(decoding: try FileSystem.readFile(Self.libraryList), as: UTF8.self)
        var loader = ""
        for path in list.split(whereSeparator: \.isNewline).map(String.init) where !path.isEmpty {
            let name = String(path.split(separator: "/").last!)
            try copy(path, to: lib + "/" + name, mode: 0o755)
            if name.hasPrefix("ld-linux") { loader = name }
        }
        let run = "/usr/lib/wyrcan/lib/\(loader) --library-path /usr/lib/wyrcan/lib /usr/lib/wyrcan/wyrcan"
        try FileSystem.writeFile(overlay + "/usr/lib/wyrcan/wyrcan-volume", Array("""
            #!/bin/sh
            # Wyrcan's volume sync, injected by Wyrcan at boot; runs with the libraries it brought.
            exec \(run) volume "$@"

            """.utf8), mode: 0o755)
        try FileSystem.writeFile(overlay + "/usr/lib/wyrcan/push-volumes", Array("""
            #!/bin/sh
            # Pushes every wyr.volume with push_on=… now. Without systemd, call this from your
            # init before it powers off (the network must still be up).
            exec /usr/lib/wyrcan/wyrcan-volume push --config \(Self.config) "$@"

            """.utf8), mode: 0o755)

        // Only what the pusher needs: the volumes it pushes and their aliases, secrets included (0600).
        var lines = ["# Written by Wyrcan at boot: the volumes pushed from this system (wyr.volume/wyr.s3 syntax)."]
        let aliases = Set(pushed.compactMap { $0.mirror?.alias })
        for alias in args.s3 where aliases.contains(alias.alias) {
            lines.append(KernelCmdline.render(key: "wyr.s3", value: alias.rendered) ?? "")
        }
        for volume in pushed { lines.append(KernelCmdline.render(key: "wyr.volume", value: volume.rendered) ?? "") }
        try FileSystem.createDirectory(overlay + "/etc/wyrcan")
        try FileSystem.writeFile(overlay + Self.config, Array((lines.joined(separator: "\n") + "\n").utf8), mode: 0o600)

        let watches = pushed.contains { $0.pushOn.contains(.changes) || $0.pushOn.contains(.periodic) }
        let unit = """
            [Unit]
            Description=Wyrcan volume push (wyr.volume push_on=…)
            Wants=network-online.target
            After=network-online.target\(afterCache ? " \(Self.cacheUnit)\nRequiresMountsFor=\(pushed.map(\.path).joined(separator: " "))" : "")
            # Stopped before the network goes down at shutdown, so ExecStop can still push.

            [Service]
            \(watches ? "Type=simple\nExecStart=/usr/lib/wyrcan/wyrcan-volume watch --config \(Self.config)" : "Type=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true")
            ExecStop=/usr/lib/wyrcan/wyrcan-volume push --config \(Self.config)
            TimeoutStopSec=600

            [Install]
            WantedBy=multi-user.target

            """
        try installUnit(Self.unit, unit, wantedBy: "multi-user.target")
        for volume in pushed { try FileSystem.createDirectory(overlay + volume.path) }
    }

    /// Writes a systemd unit into the overlay and enables it (`systemctl enable`'s symlink).
    func installUnit(_ name: String, _ text: String, wantedBy target: String) throws(FileError) {
        let system = overlay + "/etc/systemd/system"
        try FileSystem.createDirectory(system + "/\(target).wants")
        try FileSystem.writeFile(system + "/" + name, Array(text.utf8))
        guard symlink("../\(name)", system + "/\(target).wants/" + name) == 0 else { throw .last("symlink", name) }
    }

    func copy(_ from: String, to: String, mode: mode_t) throws(FileError) {
        try FileHandleFD.read(from).copyRemaining(to: FileHandleFD.create(to, mode: mode))
    }
}
