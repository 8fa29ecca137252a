import WyrcanChain
#if canImport(Glibc)
import Glibc
#endif

/// Loads the drivers the initramfs ships, with their dependencies from the depmod data
/// (`modules.dep`) built with the initramfs. The list of wanted modules is data
/// (`/etc/wyrcan/modules`), not code. Like udev's coldplug, a listed driver is loaded only when a
/// device present here matches one of its `modules.alias` patterns (rescanning after each round,
/// since a bus driver such as virtio_pci makes new devices appear); listed modules that drive no
/// device (efivarfs, crc32c, filesystems) always load. Each module load costs a signature check,
/// which is slow under emulation, so not loading a dozen idle NIC drivers shortens every boot.
struct ModuleLoader {
    let root: String
    let wanted: String
    /// Load every listed module, present hardware or not (for the rarely used storage list).
    var loadEverything = false

    init(release: String = LinuxSystem.kernelRelease, wanted: String = "/etc/wyrcan/modules", loadEverything: Bool = false) {
        root = "/lib/modules/\(release)"
        self.wanted = wanted
        self.loadEverything = loadEverything
    }

    /// module name (`virtio_net`) → (path relative to root, dependencies' relative paths)
    func dependencies() -> [String: (String, [String])] {
        guard let bytes = try? FileSystem.readFile(root + "/modules.dep") else { return [:] }
        var map: [String: (String, [String])] = [:]
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let path = String(line[..<colon])
            let deps = line[line.index(after: colon)...].split(separator: " ").map(String.init)
            map[Self.name(of: path)] = (path, deps)
        }
        return map
    }

    /// module name → modules to load before it (`softdep NAME pre: …` in modules.softdep,
    /// e.g. r8169 needs the realtek PHY driver); names that are not shipped are ignored.
    func softDependencies() -> [String: [String]] {
        guard let bytes = try? FileSystem.readFile(root + "/modules.softdep") else { return [:] }
        var map: [String: [String]] = [:]
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where line.hasPrefix("softdep ") {
            let words = line.split(separator: " ").map(String.init)
            guard words.count > 2 else { continue }
            var pre: [String] = []
            var inPre = false
            for word in words.dropFirst(2) {
                if word.hasSuffix(":") { inPre = word == "pre:"; continue }
                if inPre { pre.append(word.replacingDashes()) }
            }
            map[words[1].replacingDashes(), default: []] += pre
        }
        return map
    }

    /// modules.alias, read once, two ways:
    /// - `devices`: module name → its device patterns (`pci:v00001AF4d00001000sv*…`): aliases for
    ///   a bus the kernel has (`/sys/bus/NAME`), whose devices publish a modalias to match.
    ///   `fs-…`, `crypto-…`, `devname:…`, `dmi:…` and such are left out, so a module with only
    ///   those loads unconditionally;
    /// - `plain`: alias → module names, for the pattern-free aliases, e.g. `crc32c` →
    ///   crc32c_generic, crc32c_intel: softdeps and modprobe requests name modules that way.
    func aliases() -> (devices: [String: [String]], plain: [String: [String]]) {
        guard let bytes = try? FileSystem.readFile(root + "/modules.alias") else { return ([:], [:]) }
        let buses = Set((try? FileSystem.list("/sys/bus")) ?? [])
        var devices: [String: [String]] = [:]
        var plain: [String: [String]] = [:]
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where line.hasPrefix("alias ") {
            let parts = line.split(separator: " ")
            guard parts.count == 3 else { continue }
            if let colon = parts[1].firstIndex(of: ":"), buses.contains(String(parts[1][..<colon])) {
                devices[String(parts[2]).replacingDashes(), default: []].append(String(parts[1]))
            }
            if !parts[1].contains(where: { "*?[".contains($0) }) {
                plain[String(parts[1]).replacingDashes(), default: []].append(String(parts[2]).replacingDashes())
            }
        }
        return (devices, plain)
    }

    /// The modaliases of every device the kernel knows now (`/sys/bus/*/devices/*/modalias`).
    static func presentDevices() -> Set<String> {
        var found = Set<String>()
        for bus in (try? FileSystem.list("/sys/bus")) ?? [] {
            let devices = "/sys/bus/\(bus)/devices"
            for device in (try? FileSystem.list(devices)) ?? [] {
                guard let bytes = try? FileSystem.readFile("\(devices)/\(device)/modalias") else { continue }
                let alias = String(decoding: bytes, as: UTF8.self).trimmingSpaces().split(separator: "\n").first.map(String.init) ?? ""
                if !alias.isEmpty { found.insert(alias) }
            }
        }
        return found
    }

    static func name(of path: String) -> String {
        var base = String(path.split(separator: "/").last ?? "")
        for ext in [".ko.xz", ".ko.zst", ".ko.gz", ".ko"] where base.hasSuffix(ext) { base.removeLast(ext.count); break }
        return base.replacingDashes()
    }

    /// Loads the wanted modules that have something to do here; returns the ones that failed (name: reason).
    func loadAll() -> [String] {
        guard let list = try? FileSystem.readFile(wanted) else { return ["\(wanted): missing"] }
        let deps = dependencies()
        let aliases = aliases()
        var loader = Loader(root: root, deps: deps, softDeps: softDependencies(), aliases: aliases.plain)
        var names: [String] = []
        for raw in String(decoding: list, as: UTF8.self).split(separator: "\n") {
            let name = raw.split(separator: "#").first.map { String($0).trimmingSpaces() } ?? ""
            // Not in modules.dep: built into the kernel, or not shipped.
            if !name.isEmpty, deps[name.replacingDashes()] != nil { names.append(name.replacingDashes()) }
        }
        let patterns = loadEverything ? [:] : aliases.devices
        var pending = names
        // Round 1 loads what matches the devices present at boot; a round that loaded something
        // may have revealed more devices (virtio_pci → virtio0 → virtio_net), so look again.
        for _ in 0..<4 where !pending.isEmpty {
            let devices = patterns.isEmpty ? [] : Self.presentDevices()
            var waiting: [String] = []
            for name in pending {
                if let globs = patterns[name], !devices.isEmpty,
                   !globs.contains(where: { glob in devices.contains { fnmatch(glob, $0, 0) == 0 } }) {
                    waiting.append(name)
                    continue
                }
                loader.load(path: deps[name]!.0)
            }
            if waiting.count == pending.count { break }
            pending = waiting
        }
        return loader.failures
    }

    /// Loads the modules named (dashes or underscores), each after its dependencies; returns the
    /// ones that failed (name: reason), a name that is not shipped among them.
    func load(names: [String]) -> [String] {
        let deps = dependencies()
        var loader = Loader(root: root, deps: deps, softDeps: softDependencies(), aliases: aliases().plain)
        for name in names where !loader.load(name: name.replacingDashes()) {
            loader.failures.append("\(name): not in \(root)/modules.dep or modules.alias")
        }
        return loader.failures
    }

    /// Loads module files once each: softdep pre-dependencies, then modules.dep dependencies
    /// (listed so that the last must load first), then the module.
    private struct Loader {
        let root: String
        let deps: [String: (String, [String])]
        let softDeps: [String: [String]]
        let aliases: [String: [String]]
        var loaded = Set<String>()
        var failures: [String] = []

        /// A module by name, or every module behind a plain alias (ext4's softdep `crc32c` is
        /// crc32c_generic or crc32c_intel); false when neither is shipped.
        mutating func load(name: String) -> Bool {
            if let (path, _) = deps[name] {
                load(path: path)
                return true
            }
            let modules = (aliases[name] ?? []).compactMap { deps[$0]?.0 }
            for path in modules { load(path: path) }
            return !modules.isEmpty
        }

        mutating func load(path: String) {
            guard !loaded.contains(path) else { return }
            loaded.insert(path)
            for name in softDeps[ModuleLoader.name(of: path)] ?? [] { _ = load(name: name) }
            for dep in (deps[ModuleLoader.name(of: path)]?.1 ?? []).reversed() { load(path: dep) }
            do throws(SystemError) { try LinuxSystem.loadModule(root + "/" + path) } catch {
                // ENODEV: the module has nothing to drive here (e.g. efivarfs without EFI).
                if error.code != ENODEV { failures.append("\(ModuleLoader.name(of: path)): \(error.description)") }
            }
        }
    }
}

extension String {
    func replacingDashes() -> String { String(map { $0 == "-" ? "_" : $0 }) }
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while s.first == " " || s.first == "\t" { s.removeFirst() }
        while s.last == " " || s.last == "\t" || s.last == "\r" { s.removeLast() }
        return String(s)
    }
}
