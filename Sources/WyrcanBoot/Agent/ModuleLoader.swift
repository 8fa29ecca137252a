import WyrcanChain
#if canImport(Glibc)
import Glibc
#endif

/// Loads the network drivers the initramfs ships, with their dependencies from the depmod data
/// (`modules.dep`) built with the initramfs. The list of wanted modules is data
/// (`/etc/wyrcan/modules`), not code; modules for absent hardware load and stay idle.
struct ModuleLoader {
    let root: String
    let wanted: String

    init(release: String = LinuxSystem.kernelRelease, wanted: String = "/etc/wyrcan/modules") {
        root = "/lib/modules/\(release)"
        self.wanted = wanted
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

    static func name(of path: String) -> String {
        var base = String(path.split(separator: "/").last ?? "")
        for ext in [".ko.xz", ".ko.zst", ".ko.gz", ".ko"] where base.hasSuffix(ext) { base.removeLast(ext.count); break }
        return base.replacingDashes()
    }

    /// Loads every wanted module; returns the ones that failed (name: reason).
    func loadAll() -> [String] {
        guard let list = try? FileSystem.readFile(wanted) else { return ["\(wanted): missing"] }
        let deps = dependencies()
        var loaded = Set<String>()
        var failures: [String] = []
        func load(path: String) {
            guard !loaded.contains(path) else { return }
            loaded.insert(path)
            // modules.dep lists dependencies so that the last must load first.
            for dep in (deps[Self.name(of: path)]?.1 ?? []).reversed() { load(path: dep) }
            do throws(SystemError) { try LinuxSystem.loadModule(root + "/" + path) } catch {
                // ENODEV: the module has nothing to drive here (e.g. efivarfs without EFI).
                if error.code != ENODEV { failures.append("\(Self.name(of: path)): \(error.description)") }
            }
        }
        for raw in String(decoding: list, as: UTF8.self).split(separator: "\n") {
            let name = raw.split(separator: "#").first.map { String($0).trimmingSpaces() } ?? ""
            guard !name.isEmpty else { continue }
            guard let (path, _) = deps[name.replacingDashes()] else { continue }  // built in, or not shipped
            load(path: path)
        }
        return failures
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
