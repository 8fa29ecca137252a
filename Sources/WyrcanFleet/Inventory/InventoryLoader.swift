import Foundation
import WyrcanChain
import Yams

/// Reads and validates an inventory file as a whole. Every host's boot configuration is rendered
/// once here, so a file that loads can always be served.
public struct InventoryLoader {
    let file: String
    private var errors: [InventoryError] = []
    /// The key files `verify:` names, read once each.
    private var keys: [String: TrustedKey] = [:]

    init(file: String) { self.file = file }

    /// An inventory larger than this is refused before it is parsed.
    public static let maximumBytes = 64 << 20

    public static func load(_ path: String) throws(InventoryErrors) -> Inventory {
        let bytes: [UInt8]
        do { bytes = try FileSystem.readRegularFile(path, maximumBytes: maximumBytes) } catch {
            throw InventoryErrors(errors: [InventoryError(file: path, line: 0, field: "file", reason: "cannot read: \(error.cause)")])
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw InventoryErrors(errors: [InventoryError(file: path, line: 0, field: "file", reason: "not UTF-8 text")])
        }
        return try load(text: text, file: path)
    }

    public static func load(text: String, file: String) throws(InventoryErrors) -> Inventory {
        if let line = YAMLAliasCheck.firstAliasKey(in: text) {
            throw InventoryErrors(errors: [InventoryError(file: file, line: line, field: "yaml", reason: "an alias (*NAME) as a mapping key is refused: it can stand for a tree of any size; write the key out")])
        }
        var loader = InventoryLoader(file: file)
        let inventory = loader.parse(text)
        // Render only a structurally sound file, so one mistake is reported once.
        if let inventory, loader.errors.isEmpty { loader.renderAll(inventory) }
        guard loader.errors.isEmpty, let inventory else {
            throw InventoryErrors(errors: loader.errors.sorted { ($0.line, $0.field) < ($1.line, $1.field) })
        }
        return inventory
    }

    // MARK: - Structure

    private mutating func fail(_ node: Node?, _ field: String, _ reason: String) {
        errors.append(InventoryError(file: file, line: node.map(Self.line) ?? 0, field: field, reason: reason))
    }

    static func line(_ node: Node) -> Int { node.mark.map { $0.line } ?? 0 }

    private mutating func parse(_ text: String) -> Inventory? {
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch let error as YamlError {
            fail(nil, "yaml", Message.quoted("\(error)".split(separator: "\n").joined(separator: " "), limit: 300, quotes: false))
            if case .scanner(_, _, let mark, _) = error { errors[errors.count - 1].line = mark.line }
            if case .parser(_, _, let mark, _) = error { errors[errors.count - 1].line = mark.line }
            return nil
        } catch {
            fail(nil, "yaml", "\(error)")
            return nil
        }
        guard let root, case .mapping(let top) = root else {
            fail(root, "file", "must be a mapping with releases, defaults, groups, hosts, unknown")
            return nil
        }
        var inventory = Inventory(source: file, releases: [:], defaults: .init(), groups: [:], hosts: [:], unknown: .default)
        for (key, value) in top {
            switch key.string {
            case "releases": inventory.releases = releases(value)
            case "defaults": inventory.defaults = profile(value, field: "defaults", allowGroup: false).0
            case "groups":
                guard case .mapping(let m) = value else { fail(value, "groups", "must be a mapping of group name to settings"); continue }
                for (name, settings) in m {
                    inventory.groups[name.string ?? ""] = profile(settings, field: "groups.\(name.string ?? "")", allowGroup: false).0
                }
            case "hosts":
                guard case .mapping(let m) = value else { fail(value, "hosts", "must be a mapping of MAC address to settings"); continue }
                for (key, settings) in m {
                    let text = key.string ?? ""
                    guard let mac = MACAddress(text) else {
                        fail(key, "hosts.\(text)", "not a MAC address (use aa:bb:cc:dd:ee:ff, aa-bb-…, aabbccddeeff or aabb.ccdd.eeff)")
                        continue
                    }
                    let (p, group) = profile(settings, field: "hosts.\(text)", allowGroup: true)
                    if let existing = inventory.hosts[mac] {
                        fail(key, "hosts.\(text)", "\(mac) is already defined on line \(existing.line) (MACs are compared in any notation)")
                        continue
                    }
                    inventory.hosts[mac] = Inventory.Host(mac: mac, group: group, profile: p, line: Self.line(key))
                }
            case "unknown":
                guard let s = value.string, let policy = Inventory.UnknownPolicy(rawValue: s) else {
                    fail(value, "unknown", "must be default, exit or deny"); continue
                }
                inventory.unknown = policy
            default:
                fail(key, key.string ?? "?", "unknown key (expected releases, defaults, groups, hosts, unknown)")
            }
        }
        inventory.verifyKeys = keys
        for host in inventory.hosts.values {
            if let g = host.group, inventory.groups[g] == nil {
                errors.append(InventoryError(file: file, line: host.line, field: "hosts.\(host.mac).group", reason: "no group named \(Message.quoted(g))"))
            }
        }
        return inventory
    }

    private mutating func releases(_ node: Node) -> [String: Inventory.Release] {
        guard case .mapping(let m) = node else { fail(node, "releases", "must be a mapping of release name to {kernel, initrd}"); return [:] }
        var out: [String: Inventory.Release] = [:]
        for (key, value) in m {
            let name = key.string ?? ""
            let field = "releases.\(name)"
            guard case .mapping(let r) = value else { fail(value, field, "must be {kernel: PATH, initrd: PATH[, efi: PATH]}"); continue }
            var kernel: String?, initrd: String?, efi: String?
            for (k, v) in r {
                switch k.string {
                case "kernel": kernel = assetPath(v, field: field + ".kernel")
                case "initrd": initrd = assetPath(v, field: field + ".initrd")
                case "efi": efi = assetPath(v, field: field + ".efi")
                default: fail(k, field + ".\(k.string ?? "?")", "unknown key (expected kernel, initrd, efi)")
                }
            }
            guard let kernel, let initrd else { fail(value, field, "needs both kernel and initrd"); continue }
            out[name] = Inventory.Release(kernel: kernel, initrd: initrd, efi: efi)
        }
        return out
    }

    /// Asset paths end up in URLs and iPXE lines: relative, no '..', a safe character set.
    private mutating func assetPath(_ node: Node, field: String) -> String? {
        guard let s = node.string, !s.isEmpty else { fail(node, field, "must be a path relative to --assets"); return nil }
        let ok = !s.hasPrefix("/") && !s.split(separator: "/").contains("..") && s.unicodeScalars.allSatisfy {
            ($0.value >= 0x30 && $0.value <= 0x39) || ($0.value >= 0x41 && $0.value <= 0x5A) || ($0.value >= 0x61 && $0.value <= 0x7A)
                || $0 == "." || $0 == "_" || $0 == "-" || $0 == "/"
        }
        guard ok else { fail(node, field, "\(Message.quoted(s)) must be relative, without '..', of letters, digits, '.', '_', '-', '/'"); return nil }
        return s
    }

    /// A single value (a string, number or boolean), not a list or a mapping.
    private mutating func scalar(_ node: Node, field: String) -> String? {
        guard case .scalar = node, let s = node.string else { fail(node, field, "must be a single value, not a list or a mapping"); return nil }
        return s
    }

    /// `args` entries: a string (parameters for the final system, written like a kernel cmdline),
    /// or `{arg: STRING, secret: true}` for one that travels only over TLS (`/v1/config`).
    private mutating func arguments(_ node: Node, field: String) -> [Inventory.Argument] {
        let items: [Node]
        if case .sequence(let seq) = node { items = Array(seq) } else { items = [node] }
        var out: [Inventory.Argument] = []
        for (i, item) in items.enumerated() {
            let f = "\(field)[\(i)]"
            var argument = Inventory.Argument(text: "", secret: false)
            switch item {
            case .scalar:
                argument.text = item.string ?? ""
            case .mapping(let m):
                for (k, v) in m {
                    switch k.string {
                    case "arg": argument.text = scalar(v, field: f + ".arg") ?? ""
                    case "secret":
                        guard let b = v.bool else { fail(v, f + ".secret", "must be true or false"); continue }
                        argument.secret = b
                    default: fail(k, f + ".\(k.string ?? "?")", "unknown key (expected arg, secret)")
                    }
                }
            default:
                fail(item, f, "must be a string or {arg: STRING, secret: true}")
                continue
            }
            if let problem = argument.problem { fail(item, f, problem) }
            out.append(argument)
        }
        return out
    }

    private mutating func strings(_ node: Node, field: String) -> [String] {
        if case .scalar = node, let s = node.string { return [s] }
        guard case .sequence(let seq) = node else { fail(node, field, "must be a list of strings"); return [] }
        var out: [String] = []
        for (i, item) in seq.enumerated() {
            guard case .scalar = item, let s = item.string else { fail(item, "\(field)[\(i)]", "must be a string"); continue }
            out.append(s)
        }
        return out
    }

    private mutating func profile(_ node: Node, field: String, allowGroup: Bool) -> (Inventory.Profile, String?) {
        var p = Inventory.Profile()
        var group: String? = nil
        guard case .mapping(let m) = node else { fail(node, field, "must be a mapping of settings"); return (p, nil) }
        for (key, value) in m {
            let name = key.string ?? "?"
            let f = "\(field).\(name)"
            switch name {
            case "group" where allowGroup: group = scalar(value, field: f)
            case "release": p.release = scalar(value, field: f)
            case "image": p.images = strings(value, field: f)
            case "args": p.args = arguments(value, field: f)
            case "kernel_args": p.kernelArgs = strings(value, field: f)
            case "volumes": p.volumes = strings(value, field: f)
            case "s3": p.s3 = strings(value, field: f)
            case "insecure": p.insecure = strings(value, field: f)
            case "platform": p.platform = scalar(value, field: f)
            case "rescue":
                guard let b = value.bool else { fail(value, f, "must be true or false"); continue }
                p.rescue = b
            case "mode":
                guard let s = value.string, let mode = Inventory.Mode(rawValue: s) else { fail(value, f, "must be boot or exit"); continue }
                p.mode = mode
            case "net": p.net = net(value, field: f)
            case "verify": p.verify = verifyKeys(value, field: f)
            case "pin":
                guard let b = value.bool else { fail(value, f, "must be true or false"); continue }
                p.pin = b
            default:
                let keys = "release, image, args, kernel_args, net, volumes, s3, insecure, platform, rescue, mode, verify, pin" + (allowGroup ? ", group" : "")
                fail(key, f, "unknown key (expected \(keys))")
            }
        }
        return (p, group)
    }

    /// `verify:` key files (relative to the inventory's directory), each read and checked now,
    /// so that `check` and a reload refuse a missing or unusable key.
    private mutating func verifyKeys(_ node: Node, field: String) -> [String] {
        let items: [Node]
        if case .sequence(let seq) = node { items = Array(seq) } else { items = [node] }
        guard !items.isEmpty else { fail(node, field, "give one or more public key files (PEM)"); return [] }
        var paths: [String] = []
        for (i, item) in items.enumerated() {
            let f = items.count > 1 || node.sequence != nil ? "\(field)[\(i)]" : field
            guard case .scalar = item, let written = item.string, !written.isEmpty else { fail(item, f, "must be the path of a public key file (PEM)"); continue }
            let path = written.hasPrefix("/") ? written : Self.directory(of: file) + written
            paths.append(path)
            guard keys[path] == nil else { continue }
            do throws(FileError) { keys[path] = try TrustedKey.load(file: path) } catch {
                fail(item, f, error.description)
            }
        }
        return paths
    }

    /// `dir/` of a path, or "" for a bare file name (relative to the working directory).
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "" }
        return String(path[...slash])
    }

    private mutating func net(_ node: Node, field: String) -> [NetworkConfig.File] {
        guard case .mapping(let files) = node else { fail(node, field, "must map FILE[.KIND] to sections"); return [] }
        var out: [NetworkConfig.File] = []
        for (fileKey, sectionsNode) in files {
            let fileName = fileKey.string ?? ""
            let parts = fileName.split(separator: ".", maxSplits: 1).map(String.init)
            guard let kind = NetworkConfig.Kind(rawValue: parts.count > 1 ? parts[1] : "network") else {
                fail(fileKey, "\(field).\(fileName)", "the kind after the dot must be network, link or netdev"); continue
            }
            var file = NetworkConfig.File(name: parts.first ?? "", kind: kind, sections: [])
            guard case .mapping(let sections) = sectionsNode else { fail(sectionsNode, "\(field).\(fileName)", "must map SECTION to KEY: VALUE"); continue }
            for (sectionKey, body) in sections {
                let section = sectionKey.string ?? ""
                let bodies: [Node]
                if case .sequence(let seq) = body { bodies = Array(seq) } else { bodies = [body] }
                for b in bodies {
                    guard case .mapping(let entries) = b else { fail(b, "\(field).\(fileName).\(section)", "must map KEY to a value or a list of values"); continue }
                    var list: [(key: String, value: String)] = []
                    for (k, v) in entries {
                        for value in strings(v, field: "\(field).\(fileName).\(section).\(k.string ?? "")") { list.append((k.string ?? "", value)) }
                    }
                    // A repeated section (a list) becomes SECTION, SECTION@1, SECTION@2, …
                    let index = file.sections.filter { $0.name == section }.count
                    file.sections.append(NetworkConfig.Section(name: section, index: index, entries: list))
                }
            }
            out.append(file)
        }
        return out
    }

    // MARK: - Semantics

    /// `pin: false` (in defaults, a group or the host) under a `verify:` that applies too.
    static func pinProblem(_ profile: Inventory.Profile) -> String? {
        profile.verify != nil && profile.pin == false
            ? "verify: hands out the verified digest only: pin: false (in defaults, the group or the host) cannot go with it" : nil
    }

    /// Renders every host (and the defaults, for unknown MACs) so that nothing unservable loads.
    private mutating func renderAll(_ inventory: Inventory) {
        for host in inventory.hosts.values.sorted(by: { $0.line < $1.line }) {
            guard let (profile, group) = inventory.profile(for: host.mac) else { continue }
            if let problem = Self.pinProblem(profile) { errors.append(InventoryError(file: file, line: host.line, field: "hosts.\(host.mac).pin", reason: problem)) }
            do throws(RenderError) {
                try HostBootConfig(mac: host.mac, group: group, profile: profile, inventory: inventory).validate()
            } catch {
                errors.append(InventoryError(file: file, line: host.line, field: "hosts.\(host.mac)\(error.field.isEmpty ? "" : "." + error.field)", reason: error.reason))
            }
        }
        if inventory.unknown == .default, let problem = Self.pinProblem(inventory.defaults) {
            errors.append(InventoryError(file: file, line: 0, field: "defaults.pin", reason: problem))
        }
        if inventory.unknown == .default, inventory.defaults.images != nil || inventory.hosts.isEmpty {
            do throws(RenderError) {
                try HostBootConfig(mac: MACAddress("00:00:00:00:00:00")!, group: nil, profile: inventory.defaults, inventory: inventory).validate()
            } catch {
                errors.append(InventoryError(file: file, line: 0, field: "defaults\(error.field.isEmpty ? "" : "." + error.field)", reason: error.reason + " (unknown: default boots unknown MACs with the defaults)"))
            }
        }
    }
}
