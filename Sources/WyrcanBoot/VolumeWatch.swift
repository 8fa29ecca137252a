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
            var dirty = false
            var lastChange = Self.now()
            var nextPeriodic = Self.now() + Double(interval)
            while true {
                let wait: Double = dirty ? max(0, lastChange + Double(debounce) - Self.now())
                    : periodic.isEmpty ? 3600 : max(0, nextPeriodic - Self.now())
                if watcher.wait(seconds: wait) {
                    dirty = !onChange.isEmpty
                    lastChange = Self.now()
                    continue
                }
                if dirty && Self.now() >= lastChange + Double(debounce) {
                    dirty = !push(onChange)
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
                    let mirror = VolumeMirror(volume: volume, client: try S3Client(alias: alias, caFile: options.caFile), directory: volume.path) { printError($0) }
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

    /// Waits up to `seconds` for a change; drains the events. True if something changed.
    func wait(seconds: Double) -> Bool {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, Int32(min(seconds, 3600) * 1000)) > 0 else { return false }
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while buffer.withUnsafeMutableBytes({ read(fd, $0.baseAddress, $0.count) }) > 0 {}
        return true
    }
}
