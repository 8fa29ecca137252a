#if canImport(Glibc)
import Glibc
#endif

extension VolumeMirror {
    /// Remote → local: one listing, then only what differs.
    public func pull() throws(VolumeError) -> Report {
        try exclusive { () throws(VolumeError) -> Report in try pullLocked() }
    }

    /// Local → remote: one listing, then only what differs.
    public func push() throws(VolumeError) -> Report {
        try exclusive { () throws(VolumeError) -> Report in try pushLocked() }
    }

    private func pullLocked() throws(VolumeError) -> Report {
        guard volume.mirror != nil else { throw .noMirror(volume: volume.name) }
        let remote = try remoteFiles()
        let local: LocalTree
        do throws(FileError) {
            try FileSystem.createDirectory(directory)
            local = try LocalTree.scan(directory)
        } catch { throw .file(error) }
        let state = Locked(SyncState.load(directory: directory, mirror: mirror.description))
        let report = Locked(Report(listings: 1))
        var tasks: [@Sendable () -> VolumeError?] = []
        let directory = self.directory, bucket = mirror.bucket, client = self.client, log = self.log

        for (rel, object) in remote.sorted(by: { $0.key < $1.key }) where !LocalTree.isExcluded(rel, by: volume.exclude) {
            let entry = state.withLock { $0.entries[rel] }
            var conflict = false
            if let file = local.files[rel] {
                if isSame(rel, file, object, entry) {
                    state.withLock { $0.entries[rel] = .init(size: file.size, mtime: file.mtime, etag: object.etag) }
                    report.withLock { $0.unchanged += 1 }
                    continue
                }
                // Changed only here since the last sync: a push sends it; the mirror's older copy
                // must not replace it.
                if let entry, entry.etag == object.etag {
                    log("  kept \(rel): changed here since the last sync (push to send it)")
                    report.withLock { $0.kept += 1 }
                    continue
                }
                guard volume.overwrite else {
                    log("  kept \(rel): differs from the mirror (add overwrite to replace it)")
                    report.withLock { $0.kept += 1 }
                    continue
                }
                // The mirror changed; if this copy was edited too (or never synced), keep that edit
                // beside the mirror's version.
                conflict = entry == nil || entry?.size != file.size || entry?.mtime != file.mtime
            }
            tasks.append { [conflict] () -> VolumeError? in
                let path = directory + "/" + rel
                // Downloaded beside the file first: the local copy is moved aside (conflict) or
                // replaced only once the mirror's version is complete and verified.
                let incoming = S3Client.temporaryPath(for: path) + ".incoming"
                // Never write through a symlink inside the volume (it could point anywhere).
                if let link = LocalTree.symlinkedParent(of: rel, in: directory) {
                    return .file(FileError(operation: "refusing to write \(rel) through the symlink", path: directory + "/" + link, code: ELOOP))
                }
                do throws(FileError) { try FileSystem.createDirectory(RootfsTree.parent(of: path)) } catch { return .file(error) }
                do throws(S3Error) { try client.get(object, bucket: bucket, to: incoming) } catch { return .s3(error) }
                do throws(FileError) {
                    if conflict {
                        let kept = path + Self.conflictSuffix()
                        try FileSystem.rename(path, kept)
                        log("  conflict \(rel): changed here and on the mirror; the mirror's version wins, yours is kept as \(kept)")
                        report.withLock { $0.conflicts += 1 }
                    }
                    try FileSystem.rename(incoming, path)
                } catch {
                    FileSystem.remove(incoming)
                    return .file(error)
                }
                LocalTree.setModificationTime(path, seconds: object.lastModified)
                if let now = LocalTree.status(path) {
                    state.withLock { $0.entries[rel] = .init(size: now.size, mtime: now.mtime, etag: object.etag) }
                }
                report.withLock { $0.downloaded += 1; $0.bytes += object.size }
                return nil
            }
        }
        run(tasks, report: report)

        for (rel, file) in local.files where remote[rel] == nil && !LocalTree.isExcluded(rel, by: volume.exclude) {
            let entry = state.withLock { $0.entries[rel] }
            guard let entry else { continue }
            // Known on the mirror at the last sync and gone from it now.
            if volume.remove && entry.size == file.size && entry.mtime == file.mtime {
                FileSystem.remove(directory + "/" + rel)
                state.withLock { _ = $0.entries.removeValue(forKey: rel) }
                report.withLock { $0.deletedLocal += 1 }
            }
        }
        state.withLock { s in s.entries = s.entries.filter { local.files[$0.key] != nil || remote[$0.key] != nil } }
        return try finish(state, report)
    }

    private func pushLocked() throws(VolumeError) -> Report {
        guard volume.mirror != nil else { throw .noMirror(volume: volume.name) }
        let remote = try remoteFiles()
        let local: LocalTree
        do throws(FileError) { local = try LocalTree.scan(directory) } catch { throw .file(error) }
        for rel in local.skipped { log("  skipped \(rel): not a regular file (a bucket holds files only)") }
        let state = Locked(SyncState.load(directory: directory, mirror: mirror.description))
        let report = Locked(Report(listings: 1))
        var tasks: [@Sendable () -> VolumeError?] = []
        let directory = self.directory, bucket = mirror.bucket, client = self.client, log = self.log

        for (rel, file) in local.files.sorted(by: { $0.key < $1.key }) where !LocalTree.isExcluded(rel, by: volume.exclude) {
            let entry = state.withLock { $0.entries[rel] }
            var target = rel
            if let object = remote[rel] {
                if isSame(rel, file, object, entry) {
                    state.withLock { $0.entries[rel] = .init(size: file.size, mtime: file.mtime, etag: object.etag) }
                    report.withLock { $0.unchanged += 1 }
                    continue
                }
                guard volume.overwrite else {
                    log("  kept s3://\(bucket)/\(key(rel)): differs from the local file (add overwrite to replace it)")
                    report.withLock { $0.kept += 1 }
                    continue
                }
                if let entry, entry.etag != object.etag {
                    let localChanged = entry.size != file.size || entry.mtime != file.mtime
                    guard localChanged else {
                        log("  kept s3://\(bucket)/\(key(rel)): changed on the mirror since the last sync (pull to get it)")
                        report.withLock { $0.kept += 1 }
                        continue
                    }
                    if entry.conflictPushed == .init(size: file.size, mtime: file.mtime) {
                        report.withLock { $0.kept += 1 }   // this edit is already on the mirror as a conflict copy
                        continue
                    }
                    // Both sides changed: the mirror's object keeps its name, this edit goes beside it.
                    target = rel + Self.conflictSuffix()
                    log("  conflict \(rel): changed here and on the mirror; yours is pushed as s3://\(bucket)/\(key(target))")
                    report.withLock { $0.conflicts += 1 }
                }
            }
            let objectKey = key(target)
            tasks.append { [target] () -> VolumeError? in
                let etag: String
                do throws(S3Error) {
                    etag = try client.put(file: directory + "/" + rel, bucket: bucket, key: objectKey)
                } catch { return .s3(error) }
                state.withLock {
                    if target == rel {
                        $0.entries[rel] = .init(size: file.size, mtime: file.mtime, etag: etag)
                    } else {
                        // Remember that this version went up as a conflict copy, without touching
                        // the etag: the next pull must still see the mirror's change.
                        $0.entries[rel]?.conflictPushed = .init(size: file.size, mtime: file.mtime)
                    }
                }
                report.withLock { $0.uploaded += 1; $0.bytes += file.size }
                return nil
            }
        }
        run(tasks, report: report)

        if volume.remove {
            for (rel, object) in remote.sorted(by: { $0.key < $1.key }) where local.files[rel] == nil && !LocalTree.isExcluded(rel, by: volume.exclude) {
                // Only what the last sync saw here, unchanged on the mirror since, is deleted there.
                guard let entry = state.withLock({ $0.entries[rel] }), entry.etag == object.etag else {
                    log("  kept s3://\(bucket)/\(key(rel)): never synced with this directory")
                    report.withLock { $0.kept += 1 }
                    continue
                }
                do throws(S3Error) {
                    try client.delete(bucket: bucket, key: key(rel))
                    state.withLock { _ = $0.entries.removeValue(forKey: rel) }
                    report.withLock { $0.deletedRemote += 1 }
                } catch {
                    report.withLock { $0.failures.append(error.description) }
                }
            }
        }
        state.withLock { s in s.entries = s.entries.filter { local.files[$0.key] != nil || remote[$0.key] != nil } }
        return try finish(state, report)
    }

    /// Pull, then push: afterwards both sides hold the union (per the rules above).
    public func sync() throws(VolumeError) -> Report {
        let pulled = try pull()
        var pushed = try push()
        pushed.listings += pulled.listings
        pushed.downloaded = pulled.downloaded
        pushed.deletedLocal = pulled.deletedLocal
        pushed.bytes += pulled.bytes
        pushed.conflicts += pulled.conflicts
        pushed.kept += pulled.kept
        return pushed
    }
}
