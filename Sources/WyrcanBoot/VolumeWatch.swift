import ArgumentParser
import WyrcanChain
#if canImport(Glibc)
import Glibc
#endif

extension Volume {
    /// `wyrcan volume watch`: what the injected systemd unit runs for push_on=changes|periodic.
    struct Watch: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Push volumes when their files change (push_on=changes) and periodically (push_on=periodic), until stopped.",
            discussion: """
                Changes are seen with inotify and pushed once the directory has been quiet for \
                --debounce seconds. A failed push keeps the local data and is retried at the next \
                change or period. Shutdown pushes are the unit's ExecStop (wyrcan volume push).
                """)
        @OptionGroup var options: Options
        @Option(help: "Seconds of quiet after a change before pushing.") var debounce = 5
        @Option(help: "Seconds between periodic pushes.") var interval = 300

        func run() throws {
            let volumes = try options.resolve()
            let watcher = ChangeWatcher()
            let onChange = volumes.filter { $0.0.pushOn.contains(.changes) }
            let periodic = volumes.filter { $0.0.pushOn.contains(.periodic) }
            for (volume, _) in onChange { watcher.watchTree(volume.path) }
            // Changes are pushed once the tree has been quiet for --debounce seconds, or at the
            // latest --debounce × 12 after the first change (a file written all the time still
            // gets pushed); a failed push is retried after the next quiet period, not at once.
            var firstChange: Double? = nil
            var lastChange = Self.now()
            var nextPeriodic = Self.now() + Double(interval)
            let quiet = Double(debounce), longest = Double(debounce) * 12
            while true {
                var deadlines: [Double] = []
                if let first = firstChange { deadlines.append(min(lastChange + quiet, first + longest)) }
                if !periodic.isEmpty { deadlines.append(nextPeriodic) }
                let wait = max(0, (deadlines.min() ?? Self.now() + 3600) - Self.now())
                if watcher.wait(seconds: wait), !onChange.isEmpty {
                    lastChange = Self.now()
                    if firstChange == nil { firstChange = lastChange }
                }
                let now = Self.now()
                if let first = firstChange, now >= min(lastChange + quiet, first + longest) {
                    if push(onChange) {
                        firstChange = nil
                    } else {
                        firstChange = now
                        lastChange = now
                    }
                    for (volume, _) in onChange { watcher.watchTree(volume.path) }
                }
                if !periodic.isEmpty && Self.now() >= nextPeriodic {
                    _ = push(periodic)
                    nextPeriodic = Self.now() + Double(interval)
                }
            }
        }

        /// Pushes each volume; false if any failed (it stays dirty and is retried).
        private func push(_ volumes: [(VolumeSpec, S3Alias)]) -> Bool {
            var ok = true
            for (volume, alias) in volumes {
                do {
                    var mirror = VolumeMirror(volume: volume, client: try S3Client(alias: alias, region: options.region, caFile: options.caFile),
                                              directory: volume.path) { printError($0) }
                    mirror.width = max(1, options.jobs)
                    // stderr: unbuffered, so each line reaches the journal when it happens.
                    printError("\(volume.name): \(try mirror.push().summary)")
                } catch {
                    printError("wyrcan: \(volume.name): \(error)")
                    ok = false
                }
            }
            return ok
        }

        static func now() -> Double {
            var ts = timespec()
            clock_gettime(CLOCK_MONOTONIC, &ts)
            return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
        }
    }
}

/// inotify over whole directory trees: any change below a watched directory wakes `wait`.
final class ChangeWatcher {
    private let fd = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
    private static let mask = UInt32(IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB)

    deinit { close(fd) }

    /// Watches `path` and every directory below it (again after changes: new directories).
    func watchTree(_ path: String) {
        guard inotify_add_watch(fd, path, Self.mask) >= 0 else { return }
        for name in (try? FileSystem.list(path)) ?? [] where FileSystem.isDirectory(path + "/" + name) {
            var st = stat()
            if lstat(path + "/" + name, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR { watchTree(path + "/" + name) }
        }
    }

    /// Waits up to `seconds` for a change; drains the events. True if something changed, not
    /// counting Wyrcan's own bookkeeping (the sync state, partial downloads, the lock), which
    /// every push writes.
    func wait(seconds: Double) -> Bool {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, Int32(min(seconds, 3600) * 1000)) > 0 else { return false }
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        var changed = false
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { break }
            var offset = 0
            let header = MemoryLayout<inotify_event>.size
            while offset + header <= n {
                let length = buffer.withUnsafeBytes { Int($0.load(fromByteOffset: offset + 12, as: UInt32.self)) }
                let nameBytes = buffer[(offset + header)..<min(n, offset + header + length)].prefix { $0 != 0 }
                if !String(decoding: nameBytes, as: UTF8.self).hasPrefix(".wyrcan-") { changed = true }
                offset += header + length
            }
        }
        return changed
    }
}
