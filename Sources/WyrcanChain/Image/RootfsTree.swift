/// The merged filesystem of all layers, as metadata only: which member of which layer provides
/// each final path. Layers are applied in order with the OCI image-spec rules:
/// - `.wh.NAME` removes NAME (and everything below it) from lower layers;
/// - `.wh..wh..opq` in a directory removes everything lower layers put in that directory;
/// - a directory over a directory merges (the upper one's metadata wins);
/// - any other entry replaces what was at its path, and a non-directory replacing a directory
///   removes the directory's contents;
/// - hard links point at the member that holds the data, so they stay hard links;
/// - symlinks among a member's parent directories are followed inside the tree, as unpacking
///   the layers in order would.
struct RootfsTree {
    /// Where a member's data lives: (layer index, member ordinal).
    struct Source: Hashable, Sendable {
        var layer: Int
        var ordinal: Int
    }

    struct Node {
        var info: ArchiveEntryInfo
        /// The layer that last wrote this node (for whiteout and opaque scoping).
        var layer: Int
        /// The member whose data (regular files) or metadata (others) this node reproduces.
        var source: Source
        var synthetic = false
    }

    /// The root directory (`.`): 0755 root:root unless a layer has its own `./` entry, in which
    /// case the topmost one's mode, owner and mtime win (as when unpacking the layers in order).
    private(set) var root = ArchiveEntryInfo(path: ".", type: .directory, permissions: 0o755)
    private(set) var nodes: [String: Node] = [:]
    private var children: [String: Set<String>] = [:]

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "" }
        return String(path[..<slash])
    }

    static func name(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    static func child(_ directory: String, _ name: String) -> String {
        directory.isEmpty ? name : directory + "/" + name
    }

    mutating func apply(layer: Int, entries: [LayerEntry]) throws(ConversionError) {
        for entry in entries {
            switch entry.kind {
            case .whiteout(let path):
                removeSubtree(try placed(path, layer: layer), below: layer)
            case .opaque(let directory):
                let directory = try follow(directory).path
                for child in children[directory] ?? [] { removeSubtree(child, below: layer) }
            case .root(let info):
                root = info
            case .node(var info):
                info.path = try placed(info.path, layer: layer)
                insert(Node(info: info, layer: layer, source: Source(layer: layer, ordinal: entry.ordinal)))
            case .hardlink(let linkTarget, var info):
                let target = try placed(linkTarget, layer: layer)
                guard let targetNode = nodes[target], targetNode.info.type != .directory else {
                    throw .danglingHardlink(layer: layer, path: info.path, target: linkTarget)
                }
                // A hard link shares the target's inode: same data, same metadata.
                let path = try placed(info.path, layer: layer)
                info = targetNode.info
                info.path = path
                insert(Node(info: info, layer: layer, source: targetNode.source))
            }
        }
    }

    /// Where a layer's member `path` lands: its parent directories with the symlinks among them
    /// followed inside the tree, as when unpacking the layers in order (umoci's SecureJoin). A
    /// layer adding `lib/modules/x` over a `lib` → `usr/lib` symlink (a merged-/usr image) adds
    /// `usr/lib/modules/x`, and the symlink stays. The last component itself is not followed:
    /// the member replaces whatever is there. A symlink that leads the path to something other
    /// than a directory is refused (umoci fails there too) rather than replacing that file.
    private func placed(_ path: String, layer: Int) throws(ConversionError) -> String {
        let parent = Self.parent(of: path)
        // Every node sits at a path of directories only, so an existing directory is its own
        // resolution (the common case: no walk).
        guard !parent.isEmpty, nodes[parent]?.info.type != .directory else { return path }
        let directory = try follow(parent).path
        if directory != parent, let blocker = firstNonDirectory(along: directory) {
            throw .notADirectory(layer: layer, path: path, target: blocker)
        }
        return Self.child(directory, Self.name(of: path))
    }

    /// The node at `path` itself (a symlink stays a symlink), its parent directories followed;
    /// nil when there is none.
    func lookup(_ path: String) throws(ConversionError) -> (String, Node)? {
        let parent = Self.parent(of: path)
        let (directory, complete) = parent.isEmpty ? ("", true) : try follow(parent)
        let final = Self.child(directory, Self.name(of: path))
        guard complete, let node = nodes[final] else { return nil }
        return (final, node)
    }

    /// The first existing component of `path` (shortest first) that is not a directory.
    private func firstNonDirectory(along path: String) -> String? {
        var prefix = ""
        for part in path.split(separator: "/") {
            prefix = Self.child(prefix, String(part))
            if let node = nodes[prefix], node.info.type != .directory { return prefix }
        }
        return nil
    }

    private mutating func insert(_ node: Node) {
        let path = node.info.path
        ensureDirectory(Self.parent(of: path), layer: node.layer)
        if let existing = nodes[path] {
            if existing.info.type == .directory && node.info.type == .directory {
                nodes[path] = node  // merge: keep children, take the upper metadata
                return
            }
            removeSubtree(path, below: Int.max)
        }
        nodes[path] = node
        children[Self.parent(of: path), default: []].insert(path)
    }

    /// Makes `path` and its parents directories, replacing non-directories in the way. An
    /// existing directory becomes this layer's (keeping its metadata), like every ancestor of a
    /// member: a whiteout or opaque marker later in the same layer hides only what lower layers
    /// put below it, never this layer's own members (umoci's "upper paths").
    private mutating func ensureDirectory(_ path: String, layer: Int) {
        guard !path.isEmpty else { return }
        if let existing = nodes[path] {
            if existing.info.type == .directory {
                // Its ancestors were marked when it was (layers only grow).
                guard existing.layer < layer else { return }
                nodes[path]!.layer = layer
                ensureDirectory(Self.parent(of: path), layer: layer)
                return
            }
            removeSubtree(path, below: Int.max)
        }
        ensureDirectory(Self.parent(of: path), layer: layer)
        var info = ArchiveEntryInfo(path: path, type: .directory, permissions: 0o755)
        info.mtime = 0
        nodes[path] = Node(info: info, layer: layer, source: Source(layer: layer, ordinal: -1), synthetic: true)
        children[Self.parent(of: path), default: []].insert(path)
    }

    /// Removes `path` and its descendants that lower layers (layer < `below`) provided. Nodes of
    /// the current layer survive (a whiteout only hides what is beneath it), but their own
    /// lower-layer children are still examined.
    private mutating func removeSubtree(_ path: String, below layer: Int) {
        guard let node = nodes[path] else { return }
        if node.layer < layer {
            for child in children[path] ?? [] { removeSubtree(child, below: Int.max) }
            children[path] = nil
            nodes[path] = nil
            children[Self.parent(of: path)]?.remove(path)
        } else if node.info.type == .directory {
            for child in children[path] ?? [] { removeSubtree(child, below: layer) }
        }
    }

    // MARK: - Lookups

    /// Resolves `path` inside the tree, following symlinks (absolute targets are relative to the
    /// image root; `..` never climbs above it). Returns the final path and node, or nil when a
    /// component does not exist.
    func resolve(_ path: String) throws(ConversionError) -> (String, Node)? {
        let (final, complete) = try follow(path)
        guard complete else { return nil }
        return nodes[final].map { (final, $0) }
    }

    /// `path` with every symlink along it followed inside the tree; components that do not exist
    /// are kept as they are (`complete` is then false).
    private func follow(_ path: String) throws(ConversionError) -> (path: String, complete: Bool) {
        var pending = path.split(separator: "/").map(String.init)
        var resolved: [String] = []
        var current = ""  // `resolved` joined
        var hops = 0
        var complete = true
        while !pending.isEmpty {
            let part = pending.removeFirst()
            if part == "." || part.isEmpty { continue }
            if part == ".." {
                _ = resolved.popLast()
                current = resolved.joined(separator: "/")
                continue
            }
            let candidate = current.isEmpty ? part : current + "/" + part
            let node = nodes[candidate]
            if let node, node.info.type == .symlink {
                hops += 1
                if hops > 40 { throw .symlinkLoop(path) }
                let target = node.info.symlinkTarget ?? ""
                if target.hasPrefix("/") { resolved = []; current = "" }
                pending = target.split(separator: "/").map(String.init) + pending
                continue
            }
            if node == nil { complete = false }
            resolved.append(part)
            current = candidate
        }
        return (current, complete)
    }

    var directories: [Node] {
        nodes.values.filter { $0.info.type == .directory }.sorted { $0.info.path < $1.info.path }
    }

    /// Non-directory nodes grouped by the member that provides them.
    var membersBySource: [Source: [Node]] {
        var groups: [Source: [Node]] = [:]
        for node in nodes.values where node.info.type != .directory {
            groups[node.source, default: []].append(node)
        }
        for key in groups.keys { groups[key]!.sort { $0.info.path < $1.info.path } }
        return groups
    }
}
