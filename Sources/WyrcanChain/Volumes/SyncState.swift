#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What the last successful transfer of each file saw on both sides. It tells a local edit from a
/// remote one, so `remove` deletes only what was known on the other side and conflicts are seen.
/// Kept inside the volume as `.wyrcan-sync.json` (never synced), so it travels with the data.
struct SyncState: Codable {
    struct Entry: Codable, Equatable {
        var size: Int64
        /// Local modification time, nanoseconds.
        var mtime: Int64
        var etag: String
        /// The local version already pushed as a conflict copy (sent once, not at every push).
        var conflictPushed: Version? = nil

        init(size: Int64, mtime: Int64, etag: String) {
            self.size = size
            self.mtime = mtime
            self.etag = etag
        }
    }

    struct Version: Codable, Equatable {
        var size: Int64
        var mtime: Int64
    }

    static let fileName = ".wyrcan-sync.json"
    var version = 1
    /// The mirror the entries belong to; a state for another mirror is ignored.
    var mirror: String
    var entries: [String: Entry] = [:]

    static func load(directory: String, mirror: String) -> SyncState {
        guard let bytes = try? FileSystem.readFile(directory + "/" + fileName),
              let state = try? JSONDecoder().decode(SyncState.self, from: Data(bytes)),
              state.version == 1, state.mirror == mirror else {
            return SyncState(mirror: mirror)
        }
        return state
    }

    /// Written atomically (temporary file + rename): a crash leaves the previous state.
    func save(directory: String) throws(FileError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let bytes = (try? encoder.encode(self)).map { Array($0) } ?? []
        let temporary = directory + "/" + Self.fileName + ".tmp.\(getpid())"
        try FileSystem.writeFile(temporary, bytes, mode: 0o600)
        try FileSystem.rename(temporary, directory + "/" + Self.fileName)
    }
}
