/// One member of a layer tarball as the converter sees it: normalised path, metadata, and the
/// member's position (`ordinal`) so its data can be found again when the initrd is written.
struct LayerEntry: Sendable {
    enum Kind: Sendable {
        case node(ArchiveEntryInfo)
        case hardlink(target: String, info: ArchiveEntryInfo)
        case whiteout(String)
        case opaque(directory: String)
        /// The layer's own entry for the root directory (`./`): its mode and owner.
        case root(ArchiveEntryInfo)
    }

    var ordinal: Int
    var kind: Kind

    static let whiteoutPrefix = ".wh."
    static let opaqueMarker = ".wh..wh..opq"

    /// Relative path without `./`, leading or doubled slashes, `x/..` cleaned away; nil for the
    /// root itself; `.some(nil)` for a path that climbs out of the root.
    static func normalise(_ raw: String) -> String?? {
        var parts: [Substring] = []
        for part in raw.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." {
                guard parts.popLast() != nil else { return .some(nil) }
                continue
            }
            parts.append(part)
        }
        if parts.isEmpty { return .none }
        return .some(parts.joined(separator: "/"))
    }

    /// A member Linux could not create is refused (`TreeLimits`): a path longer than PATH_MAX, a
    /// name longer than NAME_MAX, a symlink target longer than PATH_MAX.
    static func checkLimits(_ relative: String, _ info: ArchiveEntryInfo, layer: Int) throws(ConversionError) {
        if relative.utf8.count > TreeLimits.maximumPathBytes {
            throw .beyondLimit(layer: layer, path: relative, what: "the path", limit: TreeLimits.maximumPathBytes)
        }
        if relative.split(separator: "/").contains(where: { $0.utf8.count > TreeLimits.maximumNameBytes }) {
            throw .beyondLimit(layer: layer, path: relative, what: "a name in it", limit: TreeLimits.maximumNameBytes)
        }
        if info.size < 0 || info.size > TreeLimits.maximumMemberBytes {
            throw .tooCostly(layer: layer, what: "\(Message.quoted(relative)) claims \(info.size) bytes, past the \(TreeLimits.maximumMemberBytes >> 40) TiB a member may hold")
        }
        for target in [info.symlinkTarget, info.hardlinkTarget].compactMap({ $0 }) where target.utf8.count > TreeLimits.maximumLinkTargetBytes {
            throw .beyondLimit(layer: layer, path: relative, what: "its link target", limit: TreeLimits.maximumLinkTargetBytes)
        }
    }

    /// Reads every header of a layer blob (any compression libarchive detects).
    static func scan(path: String, layer: Int) throws(ConversionError) -> [LayerEntry] {
        var entries: [LayerEntry] = []
        var unsafePath: String? = nil
        let reader: ArchiveReader
        do { reader = try ArchiveReader(layer: path) } catch { throw .archive(error) }
        var ordinal = -1
        scanning: while let info = try nextHeader(reader) {
            ordinal += 1
            guard let normalised = normalise(info.path) else {
                if info.type == .directory {
                    var root = info
                    root.path = "."
                    entries.append(LayerEntry(ordinal: ordinal, kind: .root(root)))
                }
                continue
            }
            guard let relative = normalised else { unsafePath = info.path; break scanning }
            try checkLimits(relative, info, layer: layer)
            let name = RootfsTree.name(of: relative)
            let parent = RootfsTree.parent(of: relative)
            if name == opaqueMarker {
                entries.append(LayerEntry(ordinal: ordinal, kind: .opaque(directory: parent)))
            } else if name.hasPrefix(whiteoutPrefix) {
                let hidden = String(name.dropFirst(whiteoutPrefix.count))
                entries.append(LayerEntry(ordinal: ordinal, kind: .whiteout(RootfsTree.child(parent, hidden))))
            } else if let target = info.hardlinkTarget {
                guard let t = normalise(target), let linkTarget = t else { unsafePath = target; break scanning }
                var node = info
                node.path = relative
                node.hardlinkTarget = nil
                entries.append(LayerEntry(ordinal: ordinal, kind: .hardlink(target: linkTarget, info: node)))
            } else {
                var node = info
                node.path = relative
                entries.append(LayerEntry(ordinal: ordinal, kind: .node(node)))
            }
        }
        if let unsafePath { throw .unsafePath(layer: layer, path: unsafePath) }
        return entries
    }

    private static func nextHeader(_ reader: ArchiveReader) throws(ConversionError) -> ArchiveEntryInfo? {
        do { return try reader.next() } catch { throw .archive(error) }
    }
}
