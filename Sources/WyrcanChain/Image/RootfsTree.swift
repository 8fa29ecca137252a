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
/// What a layer may cost, so that no image can make the merge take unbounded time or memory.
/// Paths, names and link targets are held to what Linux itself accepts; the rest are budgets far
/// beyond any real image (a Debian image has ≈ 45 000 entries and ≈ 3 MB of path text).
public enum TreeLimits {
    /// PATH_MAX less the terminating NUL: a longer path cannot be created or opened.
    public static let maximumPathBytes = 4095
    /// NAME_MAX: one component.
    public static let maximumNameBytes = 255
    /// A symlink's target (Linux refuses longer ones with ENAMETOOLONG).
    public static let maximumLinkTargetBytes = 4095
    /// One member's size (a sparse member claims it in a few bytes): far past any disk image.
    public static let maximumMemberBytes: Int64 = 1 << 40
    /// Steps of symlink resolution (one component each) for one layer.
    public static let maximumResolutionSteps = 20_000_000
    /// Bytes of path text the merged tree holds (its memory grows with it).
    public static let maximumTreeBytes = 256 << 20
}

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
    }

    /// The root directory (`.`): 0755 root:root unless a layer has its own `./` entry, in which
    /// case the topmost one's mode, owner and mtime win (as when unpacking the layers in order).
    private(set) var root = ArchiveEntryInfo(path: ".", type: .directory, permissions: 0o755)
    private(set) var nodes: [String: Node] = [:]
    private var children: [String: Set<String>] = [:]
    /// Path bytes held (`TreeLimits.maximumTreeBytes`).
    private var treeBytes = 0
    /// Symlink-resolution steps left for the layer being applied.
    private var stepsLeft = TreeLimits.maximumResolutionSteps
    /// Resolved parent directories of the layer being applied (`placed`), valid until the tree
    /// changes in a way that moves a resolution: a symlink added, anything removed. Without it
    /// every member under a symlinked directory would walk the symlinks again.
    private var placements: [String: String] = [:]

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
        stepsLeft = TreeLimits.maximumResolutionSteps
        placements = [:]
        for entry in entries {
            switch entry.kind {
            case .whiteout(let path):
                removeSubtree(try placed(path, layer: layer), below: layer)
            case .opaque(let directory):
                let directory = try follow(directory, layer: layer).path
                for child in children[directory] ?? [] { removeSubtree(child, below: layer) }
            case .root(let info):
                root = info
            case .node(var info):
                info.path = try placed(info.path, layer: layer)
                try insert(Node(info: info, layer: layer, source: Source(layer: layer, ordinal: entry.ordinal)))
            case .hardlink(let linkTarget, var info):
                let target = try placed(linkTarget, layer: layer)
                guard let targetNode = nodes[target], targetNode.info.type != .directory else {
                    throw .danglingHardlink(layer: layer, path: info.path, target: linkTarget)
                }
                // A hard link shares the target's inode: same data, same metadata.
                let path = try placed(info.path, layer: layer)
                info = targetNode.info
                info.path = path
                try insert(Node(info: info, layer: layer, source: targetNode.source))
            }
        }
    }

    /// Where a layer's member `path` lands: its parent directories with the symlinks among them
    /// followed inside the tree, as when unpacking the layers in order (umoci's SecureJoin). A
    /// layer adding `lib/modules/x` over a `lib` → `usr/lib` symlink (a merged-/usr image) adds
    /// `usr/lib/modules/x`, and the symlink stays. The last component itself is not followed:
    /// the member replaces whatever is there. A symlink that leads the path to something other
    /// than a directory is refused (umoci fails there too) rather than replacing that file.
    private mutating func placed(_ path: String, layer: Int) throws(ConversionError) -> String {
        let parent = Self.parent(of: path)
        // Every node sits at a path of directories only, so an existing directory is its own
        // resolution (the common case: no walk).
        guard !parent.isEmpty, nodes[parent]?.info.type != .directory else { return path }
        // (A cached resolution holds while its directory does: the tree keeps every node's
        // ancestors directories, so nothing along it can block the path.)
        let directory: String
        if let cached = placements[parent], nodes[cached]?.info.type == .directory {
            directory = cached
        } else {
            directory = try follow(parent, layer: layer).path
            if directory != parent, let blocker = firstNonDirectory(along: directory) {
                throw .notADirectory(layer: layer, path: path, target: blocker)
            }
        }
        let placedPath = Self.child(directory, Self.name(of: path))
        // A symlink can lead a path past what Linux can create.
        guard placedPath.utf8.count <= TreeLimits.maximumPathBytes else {
            throw .beyondLimit(layer: layer, path: path, what: "the path its symlinks lead to", limit: TreeLimits.maximumPathBytes)
        }
        if nodes[directory]?.info.type == .directory { placements[parent] = directory }
        return placedPath
    }

    /// The node at `path` itself (a symlink stays a symlink), its parent directories followed;
    /// nil when there is none.
    func lookup(_ path: String) throws(ConversionError) -> (String, Node)? {
        let parent = Self.parent(of: path)
        var steps = TreeLimits.maximumResolutionSteps
        let (directory, complete) = parent.isEmpty ? ("", true) : try follow(parent, steps: &steps, layer: -1)
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

    private mutating func insert(_ node: Node) throws(ConversionError) {
        let path = node.info.path
        try ensureDirectory(Self.parent(of: path), layer: node.layer)
        if let existing = nodes[path] {
            if existing.info.type == .directory && node.info.type == .directory {
                nodes[path] = node  // merge: keep children, take the upper metadata
                return
            }
            removeSubtree(path, below: Int.max)
        }
        try add(node)
        if node.info.type == .symlink { placements = [:] }
    }

    /// Puts `node` in the tree and its parent's children, within `TreeLimits.maximumTreeBytes`.
    private mutating func add(_ node: Node) throws(ConversionError) {
        let path = node.info.path
        treeBytes += 2 * path.utf8.count
        guard treeBytes <= TreeLimits.maximumTreeBytes else {
            throw .tooCostly(layer: node.layer, what: "the image's file tree holds more than \(TreeLimits.maximumTreeBytes >> 20) MiB of path names")
        }
        nodes[path] = node
        children[Self.parent(of: path), default: []].insert(path)
    }

    /// Makes `path` and its parents directories, replacing non-directories in the way. An
    /// existing directory becomes this layer's (keeping its metadata), like every ancestor of a
    /// member: a whiteout or opaque marker later in the same layer hides only what lower layers
    /// put below it, never this layer's own members (umoci's "upper paths"). Iterative: a path
    /// may have thousands of components.
    private mutating func ensureDirectory(_ path: String, layer: Int) throws(ConversionError) {
        var missing: [String] = []
        var current = path
        while !current.isEmpty {
            if let existing = nodes[current] {
                if existing.info.type == .directory {
                    // Its ancestors were marked when it was (layers only grow).
                    guard existing.layer < layer else { break }
                    nodes[current]!.layer = layer
                    current = Self.parent(of: current)
                    continue
                }
                removeSubtree(current, below: Int.max)
            }
            missing.append(current)
            current = Self.parent(of: current)
        }
        for directory in missing.reversed() {
            var info = ArchiveEntryInfo(path: directory, type: .directory, permissions: 0o755)
            info.mtime = 0
            try add(Node(info: info, layer: layer, source: Source(layer: layer, ordinal: -1)))
        }
    }

    /// Removes `path` and its descendants that lower layers (layer < `below`) provided. Nodes of
    /// the current layer survive (a whiteout only hides what is beneath it), but their own
    /// lower-layer children are still examined. Iterative, like `ensureDirectory`.
    private mutating func removeSubtree(_ path: String, below layer: Int) {
        guard nodes[path] != nil else { return }
        placements = [:]
        var pending: [(path: String, below: Int)] = [(path, layer)]
        while let (current, below) = pending.popLast() {
            guard let node = nodes[current] else { continue }
            if node.layer < below {
                for child in children[current] ?? [] { pending.append((child, Int.max)) }
                children[current] = nil
                nodes[current] = nil
                treeBytes -= 2 * current.utf8.count
                children[Self.parent(of: current)]?.remove(current)
            } else if node.info.type == .directory {
                for child in children[current] ?? [] { pending.append((child, below)) }
            }
        }
    }

    // MARK: - Lookups

    /// Resolves `path` inside the tree, following symlinks (absolute targets are relative to the
    /// image root; `..` never climbs above it). Returns the final path and node, or nil when a
    /// component does not exist.
    func resolve(_ path: String) throws(ConversionError) -> (String, Node)? {
        var steps = TreeLimits.maximumResolutionSteps
        let (final, complete) = try follow(path, steps: &steps, layer: -1)
        guard complete else { return nil }
        return nodes[final].map { (final, $0) }
    }

    /// `follow` within the budget of the layer being applied.
    private mutating func follow(_ path: String, layer: Int) throws(ConversionError) -> (path: String, complete: Bool) {
        var steps = stepsLeft
        defer { stepsLeft = steps }
        return try follow(path, steps: &steps, layer: layer)
    }

    /// `path` with every symlink along it followed inside the tree; components that do not exist
    /// are kept as they are (`complete` is then false). Components wait on a stack (the next one
    /// last), so a step costs the same however long the path: the work is the number of
    /// components visited, which `steps` bounds.
    private func follow(_ path: String, steps: inout Int, layer: Int) throws(ConversionError) -> (path: String, complete: Bool) {
        var pending = path.split(separator: "/").reversed().map(String.init)
        var current = ""
        var hops = 0
        var complete = true
        while let part = pending.popLast() {
            steps -= 1
            if steps < 0 {
                throw .tooCostly(layer: max(layer, 0), what: "resolving its symlinks takes more than \(TreeLimits.maximumResolutionSteps) steps")
            }
            if part == "." || part.isEmpty { continue }
            if part == ".." {
                current = Self.parent(of: current)
                continue
            }
            let candidate = Self.child(current, part)
            let node = nodes[candidate]
            if let node, node.info.type == .symlink {
                hops += 1
                if hops > 40 { throw .symlinkLoop(path) }
                let target = node.info.symlinkTarget ?? ""
                if target.hasPrefix("/") { current = "" }
                pending += target.split(separator: "/").reversed().map(String.init)
                continue
            }
            if node == nil { complete = false }
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
