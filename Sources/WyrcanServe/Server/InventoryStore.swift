import Foundation
import Logging
import WyrcanChain
import WyrcanFleet

/// The inventory being served. A reload that fails keeps the old inventory serving and logs why.
final class InventoryStore: Sendable {
    let path: String
    private let current: Locked<(inventory: Inventory, stamp: FileStamp, generation: Int)>
    let logger: Logger
    /// Runs on a reloaded inventory before it is served (the image pinner resolves its images,
    /// so that a reload does not turn hosts away while they are checked).
    private let prepare: (@Sendable (Inventory) -> Void)?
    /// Held for a whole reload (load, prepare, swap) and by `whileSteady`: reloads run one at a
    /// time, and no one works with an inventory that a reload is replacing.
    private let reloading = Locked<Void>(())

    struct FileStamp: Equatable, Sendable {
        var size: Int64
        var mtime: Int64

        init(_ path: String) {
            var st = stat()
            if stat(path, &st) == 0 {
                size = Int64(st.st_size)
                mtime = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
            } else {
                size = -1
                mtime = -1
            }
        }
    }

    init(path: String, logger: Logger, prepare: (@Sendable (Inventory) -> Void)? = nil) throws(InventoryErrors) {
        self.path = path
        self.logger = logger
        self.prepare = prepare
        let stamp = FileStamp(path)
        current = Locked((try InventoryLoader.load(path), stamp, 0))
    }

    /// A store that never reloads (for `render`).
    init(fixed inventory: Inventory, logger: Logger) {
        path = ""
        self.logger = logger
        prepare = nil
        current = Locked((inventory, FileStamp(""), 0))
    }

    var inventory: Inventory { current.withLock { $0.inventory } }

    /// The inventory and a number that changes with every successful reload (for caches).
    var snapshot: (inventory: Inventory, generation: Int) { current.withLock { ($0.inventory, $0.generation) } }

    /// Loads the file again; returns whether the served inventory changed.
    @discardableResult
    func reload(reason: String) -> Bool {
        reloading.withLock { _ in reloadNow(reason: reason) }
    }

    /// Runs `body` with the served inventory while no reload runs.
    func whileSteady(_ body: (Inventory) -> Void) {
        reloading.withLock { _ in body(inventory) }
    }

    private func reloadNow(reason: String) -> Bool {
        let stamp = FileStamp(path)
        do throws(InventoryErrors) {
            let fresh = try InventoryLoader.load(path)
            prepare?(fresh)
            current.withLock { $0 = (fresh, stamp, $0.generation + 1) }
            logger.info("inventory reloaded (\(reason)): \(fresh.hosts.count) hosts, \(fresh.groups.count) groups")
            return true
        } catch {
            current.withLock { $0.stamp = stamp }
            logger.error("inventory reload (\(reason)) failed; still serving the previous one: \(error.description.replacingOccurrences(of: "\n", with: "; "))")
            return false
        }
    }

    /// Reloads when the file's size or modification time changed since the last load attempt.
    func reloadIfChanged() {
        let stamp = FileStamp(path)
        let changed = current.withLock { $0.stamp != stamp }
        if changed { reload(reason: "file changed") }
    }
}
