import Dispatch

/// Fetches an image's layers (registry, OCI layout or OCI archive), verified, into a work
/// directory, ready for `InitrdBuilder`.
public struct ImagePuller {
    public var options: RegistryOptions
    public var quiet = false
    /// Called once the manifest is known, before any layer is fetched (e.g. a memory check).
    public var beforeFetch: (@Sendable (ResolvedImage) throws(ConversionError) -> Void)? = nil
    /// Called with each layer (its index and verified blob) as soon as it is fetched, on the
    /// fetching thread, while other layers may still be downloading; returns the path to hand
    /// on in `Pulled.layers` (e.g. the layer decompressed: `InitrdBuilder.stage`). When that is
    /// another file, a blob downloaded from a registry (this pull's own copy, one per layer) is
    /// deleted: only the new file is read from then on, and for the boot agent the space is RAM.
    /// An OCI layout's blobs stay (they are the user's, or shared by layers with one digest).
    public var afterFetch: (@Sendable (Int, String) throws(ConversionError) -> String)? = nil
    /// When set, a registry image must be signed by one of its keys (checked after the manifest,
    /// before any layer is fetched); an OCI layout is refused.
    public var verifier: ImageSignatureVerifier? = nil

    public init(options: RegistryOptions, quiet: Bool = false) {
        self.options = options
        self.quiet = quiet
    }

    public struct Pulled: Sendable {
        public var image: ResolvedImage
        /// Layer blob paths in manifest order.
        public var layers: [String]
        /// The key that signed the image (with `verifier`).
        public var signedBy: String? = nil
    }

    public func pull(_ location: ImageLocation, workDirectory: String) throws(ConversionError) -> Pulled {
        switch location {
        case .registry(let reference):
            return try pullRegistry(reference, workDirectory: workDirectory)
        case .layout(let directory, let tag):
            return try pullLayout(OCILayout(directory: directory, tag: tag))
        case .archive(let file, let tag):
            let directory = workDirectory + "/layout"
            try Self.extract(archive: file, into: directory)
            return try pullLayout(OCILayout(directory: directory, tag: tag))
        }
    }

    private func pullLayout(_ layout: OCILayout) throws(ConversionError) -> Pulled {
        if verifier != nil { throw .signature(.notARegistryImage(layout.name)) }
        let image: ResolvedImage
        do { image = try layout.resolve(platform: options.platform) } catch { throw .registry(error) }
        try beforeFetch?(image)
        let layers = image.manifest.layers
        let progress = TransferProgress(title: "Verifying \(layout.name)", sizes: layers.map(\.size), labels: layers.map { short($0.digest) }, quiet: quiet)
        let afterFetch = self.afterFetch
        // (Verifying reads the disk; staging in `afterFetch`, if any, uses a CPU each.)
        let paths = try Parallel.map(layers.count, width: max(2, LinuxSystem.processorCount)) { (i) throws(ConversionError) -> String in
            let path: String
            do throws(RegistryError) {
                path = try layout.verifyBlob(layers[i]) { progress.update(layer: i, bytes: $0) }
            } catch { throw .registry(error) }
            progress.finished(layer: i)
            return try afterFetch?(i, path) ?? path
        }
        progress.complete()
        return Pulled(image: image, layers: paths)
    }

    private func pullRegistry(_ reference: Reference, workDirectory: String) throws(ConversionError) -> Pulled {
        let tokens = TokenCache()
        let image: ResolvedImage
        let client: RegistryClient
        do {
            client = try RegistryClient(reference: reference, options: options, tokens: tokens)
            image = try client.resolve()
        } catch { throw .registry(error) }
        do throws(FileError) { try FileSystem.createDirectory(workDirectory + "/blobs") } catch { throw .file(error) }
        var signedBy: String? = nil
        if let verifier {
            do throws(SignatureError) { signedBy = try verifier.verify(image, client: client, workDirectory: workDirectory + "/blobs").key.name } catch {
                throw .signature(error)
            }
        }
        try beforeFetch?(image)
        let layers = image.manifest.layers
        let progress = TransferProgress(title: "Getting \(reference)", sizes: layers.map(\.size), labels: layers.map { short($0.digest) }, quiet: quiet)
        let options = self.options
        let afterFetch = self.afterFetch
        let paths = try Parallel.map(layers.count, width: options.parallelDownloads) { (i) throws(ConversionError) -> String in
            let layer = layers[i]
            let path = "\(workDirectory)/blobs/\(layer.digest.hex)-\(i)"
            do throws(RegistryError) {
                let client = try RegistryClient(reference: reference, options: options, tokens: tokens)
                try client.fetchBlob(layer, to: path) { progress.update(layer: i, bytes: $0) }
            } catch { throw .registry(error) }
            progress.finished(layer: i)
            guard let afterFetch else { return path }
            let handedOn = try afterFetch(i, path)
            if handedOn != path { FileSystem.remove(path) }
            return handedOn
        }
        progress.complete()
        return Pulled(image: image, layers: paths, signedBy: signedBy)
    }

    static func extract(archive file: String, into directory: String) throws(ConversionError) {
        do throws(ArchiveError) {
            let reader = try ArchiveReader(path: file)
            while let entry = try reader.next() {
                guard let n = LayerEntry.normalise(entry.path) else { continue }
                guard let relative = n else { throw ArchiveError(operation: file, message: "entry '\(entry.path)' escapes the archive") }
                let path = directory + "/" + relative
                // A blob stored twice in the archive (a tar hard link): the same bytes.
                if let target = entry.hardlinkTarget {
                    guard let t = LayerEntry.normalise(target), let relativeTarget = t else {
                        throw ArchiveError(operation: file, message: "hard link '\(entry.path)' points outside the archive")
                    }
                    do throws(FileError) {
                        try FileSystem.createDirectory(RootfsTree.parent(of: path))
                        try FileSystem.hardLink(directory + "/" + relativeTarget, path)
                    } catch { throw ArchiveError(operation: file, message: error.description) }
                    continue
                }
                switch entry.type {
                case .directory:
                    do throws(FileError) { try FileSystem.createDirectory(path) } catch { throw ArchiveError(operation: file, message: error.description) }
                case .regular:
                    let out: FileHandleFD
                    do throws(FileError) {
                        try FileSystem.createDirectory(RootfsTree.parent(of: path))
                        out = try FileHandleFD.create(path)
                    } catch { throw ArchiveError(operation: file, message: error.description) }
                    var failure: FileError? = nil
                    do {
                        try reader.readData { chunk in
                            do throws(FileError) { try out.write(chunk) } catch { failure = error }
                        }
                    } catch {
                        throw ArchiveError(operation: file, message: "\(entry.path): \((error as? ArchiveError)?.message ?? "\(error)")")
                    }
                    if let failure { throw ArchiveError(operation: file, message: failure.description) }
                default:
                    continue
                }
            }
        } catch {
            throw .archive(error)
        }
    }
}

func short(_ digest: Digest) -> String { "\(digest.algorithm.rawValue):\(digest.hex.prefix(12))" }
