/// systemd-networkd files built from `wyr.net.[KIND.]FILE.SECTION[@N].KEY=VALUE` parameters.
///
/// - KIND is `network` (default), `link` or `netdev`; the file is `/etc/systemd/network/FILE.KIND`.
/// - A key given several times in one section is written once per occurrence, in cmdline order
///   (list keys such as `Address=` or `DNS=` accumulate; for single-valued keys networkd uses the
///   last line, which matches the original Wyrcan's "last one wins").
/// - `SECTION@N` (N = 1, 2, …) writes another section of the same name, for repeated sections such
///   as `[Route]` or `[Address]`; `SECTION` alone is `SECTION@0`. Sections appear in the order
///   they were first named.
/// - Without any `wyr.net.*` parameter, the original's default applies: `autoconf.network` with
///   `[Match] Type=ether` and `[Network] DHCP=yes`, `IPv6AcceptRA=yes`.
public struct NetworkConfig: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable, Codable {
        case network, link, netdev
    }

    public struct Section: Sendable, Equatable {
        public var name: String
        public var index: Int
        public var entries: [(key: String, value: String)]

        public init(name: String, index: Int, entries: [(key: String, value: String)]) {
            self.name = name
            self.index = index
            self.entries = entries
        }

        public static func == (a: Section, b: Section) -> Bool {
            a.name == b.name && a.index == b.index
                && a.entries.elementsEqual(b.entries, by: { $0.key == $1.key && $0.value == $1.value })
        }
    }

    public struct File: Sendable, Equatable {
        public var name: String
        public var kind: Kind
        public var sections: [Section]

        public init(name: String, kind: Kind, sections: [Section]) {
            self.name = name
            self.kind = kind
            self.sections = sections
        }

        /// A file of the original's EFI format (`NAME.KIND` → section → key → value); nil for
        /// a kind networkd does not have.
        public init?(fileName: String, legacySections: [String: [String: String]]) {
            let dot = fileName.lastIndex(of: ".")
            guard let kind = Kind(rawValue: dot.map { String(fileName[fileName.index(after: $0)...]) } ?? "network") else { return nil }
            self.init(name: dot.map { String(fileName[..<$0]) } ?? fileName, kind: kind, sections: legacySections.sorted { $0.key < $1.key }.map { section in
                Section(name: section.key, index: 0, entries: section.value.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
            })
        }

        /// The `wyr.net.*` parameters that make this file, in order: what a cmdline carries.
        public var parameters: [(key: String, value: String)] {
            let prefix = kind == .network ? "wyr.net.\(name)" : "wyr.net.\(kind.rawValue).\(name)"
            return sections.flatMap { section in
                let sectionKey = section.index == 0 ? section.name : "\(section.name)@\(section.index)"
                return section.entries.map { (key: "\(prefix).\(sectionKey).\($0.key)", value: $0.value) }
            }
        }

        public var fileName: String { "\(name).\(kind.rawValue)" }
        public var path: String { "\(NetworkConfig.directory)/\(fileName)" }

        /// The exact file contents networkd reads.
        public var contents: String {
            var text = ""
            for (i, section) in sections.enumerated() {
                if i > 0 { text += "\n" }
                text += "[\(section.name)]\n"
                for entry in section.entries { text += "\(entry.key)=\(entry.value)\n" }
            }
            return text
        }
    }

    public static let directory = "/etc/systemd/network"

    /// Files given on the cmdline, in the order first named.
    public private(set) var files: [File] = []

    public init() {}

    /// Whether the cmdline configured nothing, so the default file applies.
    public var isEmpty: Bool { files.isEmpty }

    /// The files Wyrcan writes: the configured ones, or the default.
    public var effectiveFiles: [File] { files.isEmpty ? [Self.defaultFile] : files }

    public static let defaultFile = File(
        name: "autoconf", kind: .network,
        sections: [
            Section(name: "Match", index: 0, entries: [("Type", "ether")]),
            Section(name: "Network", index: 0, entries: [("DHCP", "yes"), ("IPv6AcceptRA", "yes")]),
        ])

    /// Adds one parameter. `path` is what follows `wyr.net.`; `parameter` names it in errors.
    public mutating func add(path: String, value: String?, parameter: String) throws(CmdlineError) {
        let parts = path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        let kind: Kind
        let rest: ArraySlice<String>
        switch parts.count {
        case 3:
            kind = .network
            rest = parts[...]
        case 4:
            guard let k = Kind(rawValue: parts[0]) else {
                throw .invalidNetworkKey(parameter: parameter, reason: "unknown file kind \(Message.quoted(parts[0])) (use network, link or netdev)")
            }
            kind = k
            rest = parts[1...]
        default:
            throw .invalidNetworkKey(parameter: parameter, reason: "expected 3 or 4 dot-separated parts after wyr.net., found \(parts.count)")
        }
        let fileName = rest[rest.startIndex]
        let sectionSpec = rest[rest.startIndex + 1]
        let key = rest[rest.startIndex + 2]
        guard Self.isFileName(fileName) else {
            throw .invalidNetworkKey(parameter: parameter, reason: "file name \(Message.quoted(fileName)) must be letters, digits, '-' or '_'")
        }
        let (sectionName, index) = try Self.section(sectionSpec, parameter: parameter)
        guard Self.isIdentifier(key) else {
            throw .invalidNetworkKey(parameter: parameter, reason: "key \(Message.quoted(key)) must start with a letter and hold only letters and digits")
        }
        guard let value else {
            throw .missingValue(parameter: parameter, expected: "VALUE")
        }
        if value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            throw .invalidValue(parameter: parameter, value: value, reason: "control characters (such as a newline) cannot appear in a networkd value")
        }

        var fileIndex = files.firstIndex(where: { $0.name == fileName && $0.kind == kind })
        if fileIndex == nil {
            files.append(File(name: fileName, kind: kind, sections: []))
            fileIndex = files.count - 1
        }
        var file = files[fileIndex!]
        if let s = file.sections.firstIndex(where: { $0.name == sectionName && $0.index == index }) {
            file.sections[s].entries.append((key, value))
        } else {
            file.sections.append(Section(name: sectionName, index: index, entries: [(key, value)]))
        }
        files[fileIndex!] = file
    }

    /// Takes `other`'s files in place of those of the same name and kind (added when new).
    public mutating func replaceFiles(with other: NetworkConfig) {
        for file in other.files {
            if let i = files.firstIndex(where: { $0.name == file.name && $0.kind == file.kind }) { files[i] = file } else { files.append(file) }
        }
    }

    /// The original Wyrcan's EFI format: file name (with extension) → section → key → value.
    /// Repeated keys and `@N` sections do not fit it; `nil` then.
    public var legacyMap: [String: [String: [String: String]]]? {
        var map: [String: [String: [String: String]]] = [:]
        for file in files {
            var sections: [String: [String: String]] = [:]
            for section in file.sections {
                guard section.index == 0, sections[section.name] == nil else { return nil }
                var entries: [String: String] = [:]
                for entry in section.entries {
                    guard entries[entry.key] == nil else { return nil }
                    entries[entry.key] = entry.value
                }
                sections[section.name] = entries
            }
            map[file.fileName] = sections
        }
        return map
    }

    private static func section(_ spec: String, parameter: String) throws(CmdlineError) -> (String, Int) {
        var name = spec
        var index = 0
        if let at = spec.firstIndex(of: "@") {
            name = String(spec[..<at])
            let digits = spec[spec.index(after: at)...]
            guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(digits), n <= 999 else {
                throw .invalidNetworkKey(parameter: parameter, reason: "section index in \(Message.quoted(spec)) must be a number from 0 to 999")
            }
            index = n
        }
        guard isIdentifier(name) else {
            throw .invalidNetworkKey(parameter: parameter, reason: "section \(Message.quoted(name)) must start with a letter and hold only letters and digits")
        }
        return (name, index)
    }

    static func isIdentifier(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, first.isASCIILetter else { return false }
        return s.unicodeScalars.allSatisfy { $0.isASCIILetter || $0.isASCIIDigit }
    }

    static func isFileName(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, first.isASCIILetter || first.isASCIIDigit else { return false }
        return s.unicodeScalars.allSatisfy { $0.isASCIILetter || $0.isASCIIDigit || $0 == "-" || $0 == "_" }
    }
}

extension Unicode.Scalar {
    var isASCIILetter: Bool { (value >= 0x41 && value <= 0x5A) || (value >= 0x61 && value <= 0x7A) }
    var isASCIIDigit: Bool { value >= 0x30 && value <= 0x39 }
}
