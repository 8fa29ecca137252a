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

    /// What a sync does with one file, decided before any transfer starts.
    enum Decision {
        /// Both sides hold the same; the state records it.
        case unchanged(SyncState.Entry)
        /// Left as it is, with the reason logged (nil: nothing to say).
        case keep(String?)
        /// Copied; `conflict`: the destination's own edit is kept beside it.
        case transfer(conflict: Bool)
    }

    /// The two sides and the last sync, for one pull or push.
    struct SyncRun {
        var remote: [String: S3Object]
        var local: LocalTree
        let state: Locked<SyncState>
        let report = Locked(Report(listings: 1))

        func entry(_ rel: String) -> SyncState.Entry? { state.withLock { $0.entries[rel] } }

        /// Forgets files that are gone from both sides.
        func prune() {
            state.withLock { s in s.entries = s.entries.filter { local.files[$0.key] != nil || remote[$0.key] != nil } }
        }
    }

    /// Records a decision that transfers nothing (`unchanged`, `keep`: its reason logged about
    /// `name`); returns the decision, for the transfers.
    private func settle(_ decision: Decision, _ rel: String, name: String, _ run: SyncRun) -> Decision {
        switch decision {
        case .unchanged(let entry):
            run.state.withLock { $0.entries[rel] = entry }
            run.report.withLock { $0.unchanged += 1 }
        case .keep(let reason):
            if let reason { log("  kept \(name): \(reason)") }
            run.report.withLock { $0.kept += 1 }
        case .transfer:
            break
        }
        return decision
    }

    /// The mirror's listing, then the local tree (in `exclusive`'s directory) and the sync state.
    private func begin() throws(VolumeError) -> SyncRun {
        guard volume.mirror != nil else { throw .noMirror(volume: volume.name) }
        let remote = try remoteFiles()
        return SyncRun(remote: remote, local: try scanLocal(),
                       state: Locked(SyncState.load(directory: directory, mirror: mirror.description)))
    }

    private func pullLocked() throws(VolumeError) -> Report {
        let run = try begin()
        var tasks: [@Sendable () -> VolumeError?] = []
        for (rel, object) in run.remote.sorted(by: { $0.key < $1.key }) where !LocalTree.isExcluded(rel, by: volume.exclude) {
            guard case .transfer(let conflict) = settle(pullDecision(rel, object, run), rel, name: rel, run) else { continue }
            tasks.append(download(rel, object, conflict: conflict, run))
        }
        self.run(tasks, report: run.report)
        if volume.remove { removeLocalFilesGoneFromTheMirror(run) }
        run.prune()
        return try finish(run.state, run.report)
    }

    private func scanLocal() throws(VolumeError) -> LocalTree {
        do throws(FileError) { return try LocalTree.scan(directory) } catch { throw .file(error) }
    }

    /// Pull: whether the mirror's `object` replaces the local file.
    private func pullDecision(_ rel: String, _ object: S3Object, _ run: SyncRun) -> Decision {
        guard let file = run.local.files[rel] else { return .transfer(conflict: false) }
        let entry = run.entry(rel)
        if isSame(rel, file, object, entry) { return .unchanged(.init(size: file.size, mtime: file.mtime, etag: object.etag)) }
        // Changed only here since the last sync: a push sends it; the mirror's older copy must
        // not replace it.
        if let entry, entry.etag == object.etag { return .keep("changed here since the last sync (push to send it)") }
        guard volume.overwrite else { return .keep("differs from the mirror (add overwrite to replace it)") }
        // The mirror changed; if this copy was edited too (or never synced), keep that edit
        // beside the mirror's version.
        return .transfer(conflict: entry == nil || entry?.size != file.size || entry?.mtime != file.mtime)
    }

    /// Pull: one download, verified beside the file before it replaces (or moves aside) the local copy.
    private func download(_ rel: String, _ object: S3Object, conflict: Bool, _ run: SyncRun) -> @Sendable () -> VolumeError? {
        let directory = self.directory, bucket = mirror.bucket, client = self.client, log = self.log
        let state = run.state, report = run.report
        return { () -> VolumeError? in
            let path = directory + "/" + rel
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

    /// Pull with `remove`: a local file the mirror had at the last sync, unchanged here since and
    /// gone from the mirror now, is deleted.
    private func removeLocalFilesGoneFromTheMirror(_ run: SyncRun) {
        for (rel, file) in run.local.files where run.remote[rel] == nil && !LocalTree.isExcluded(rel, by: volume.exclude) {
            guard let entry = run.entry(rel), entry.size == file.size && entry.mtime == file.mtime else { continue }
            FileSystem.remove(directory + "/" + rel)
            run.state.withLock { _ = $0.entries.removeValue(forKey: rel) }
            run.report.withLock { $0.deletedLocal += 1 }
        }
    }

    private func pushLocked() throws(VolumeError) -> Report {
        let run = try begin()
        for rel in run.local.skipped { log("  skipped \(rel): not a regular file (a bucket holds files only)") }
        var tasks: [@Sendable () -> VolumeError?] = []
        for (rel, file) in run.local.files.sorted(by: { $0.key < $1.key }) where !LocalTree.isExcluded(rel, by: volume.exclude) {
            guard case .transfer(let conflict) = settle(pushDecision(rel, file, run), rel, name: "s3://\(mirror.bucket)/\(key(rel))", run) else { continue }
            let target = conflict ? rel + Self.conflictSuffix() : rel
            if conflict {
                log("  conflict \(rel): changed here and on the mirror; yours is pushed as s3://\(mirror.bucket)/\(key(target))")
                run.report.withLock { $0.conflicts += 1 }
            }
            tasks.append(upload(rel, file, as: target, run))
        }
        self.run(tasks, report: run.report)
        if volume.remove { removeObjectsGoneFromHere(run) }
        run.prune()
        return try finish(run.state, run.report)
    }

    /// Push: whether the local file replaces the mirror's object (or goes beside it).
    private func pushDecision(_ rel: String, _ file: LocalTree.File, _ run: SyncRun) -> Decision {
        guard let object = run.remote[rel] else { return .transfer(conflict: false) }
        let entry = run.entry(rel)
        if isSame(rel, file, object, entry) { return .unchanged(.init(size: file.size, mtime: file.mtime, etag: object.etag)) }
        guard volume.overwrite else { return .keep("differs from the local file (add overwrite to replace it)") }
        guard let entry, entry.etag != object.etag else { return .transfer(conflict: false) }
        let localChanged = entry.size != file.size || entry.mtime != file.mtime
        guard localChanged else { return .keep("changed on the mirror since the last sync (pull to get it)") }
        // This edit is already on the mirror as a conflict copy.
        if entry.conflictPushed == .init(size: file.size, mtime: file.mtime) { return .keep(nil) }
        // Both sides changed: the mirror's object keeps its name, this edit goes beside it.
        return .transfer(conflict: true)
    }

    /// Push: one upload, to `target` (the file's own key, or its conflict copy's).
    private func upload(_ rel: String, _ file: LocalTree.File, as target: String, _ run: SyncRun) -> @Sendable () -> VolumeError? {
        let directory = self.directory, bucket = mirror.bucket, client = self.client, objectKey = key(target)
        let state = run.state, report = run.report
        return { () -> VolumeError? in
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

    /// Push with `remove`: only what the last sync saw here, unchanged on the mirror since and
    /// gone from here now, is deleted there.
    private func removeObjectsGoneFromHere(_ run: SyncRun) {
        for (rel, object) in run.remote.sorted(by: { $0.key < $1.key }) where run.local.files[rel] == nil && !LocalTree.isExcluded(rel, by: volume.exclude) {
            guard let entry = run.entry(rel), entry.etag == object.etag else {
                log("  kept s3://\(mirror.bucket)/\(key(rel)): never synced with this directory")
                run.report.withLock { $0.kept += 1 }
                continue
            }
            do throws(S3Error) {
                try client.delete(bucket: mirror.bucket, key: key(rel))
                run.state.withLock { _ = $0.entries.removeValue(forKey: rel) }
                run.report.withLock { $0.deletedRemote += 1 }
            } catch {
                run.report.withLock { $0.failures.append(error.description) }
            }
        }
    }
}
