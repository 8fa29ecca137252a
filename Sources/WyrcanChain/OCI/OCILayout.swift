#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Where an image comes from: a registry, a local OCI image layout directory, or an OCI archive.
public enum ImageLocation: Sendable, CustomStringConvertible {
    case registry(Reference)
    /// `oci:DIR[:TAG]`
    case layout(directory: String, tag: String?)
    /// `oci-archive:FILE[:TAG]` (a tar of a layout)
    case archive(file: String, tag: String?)

    public init(parsing text: String) throws(ReferenceError) {
        /// Split at the first colon, as skopeo does: a tag (a `ref.name`) may hold `/` and `:`,
        /// as in `oci:DIR:example.com/app:1.0`. A path that exists with a colon in it wins.
        func pathAndTag(_ rest: Substring) -> (String, String?) {
            let colons = rest.indices.filter { rest[$0] == ":" }
            guard let first = colons.first, !FileSystem.exists(String(rest)) else { return (String(rest), nil) }
            let split = colons.first { FileSystem.exists(String(rest[..<$0])) } ?? first
            let tag = rest[rest.index(after: split)...]
            return (String(rest[..<split]), tag.isEmpty ? nil : String(tag))
        }
        if text.hasPrefix("oci:") {
            let (dir, tag) = pathAndTag(text.dropFirst(4))
            self = .layout(directory: dir, tag: tag)
        } else if text.hasPrefix("oci-archive:") {
            let (file, tag) = pathAndTag(text.dropFirst(12))
            self = .archive(file: file, tag: tag)
        } else {
            let ref = text.hasPrefix("docker://") ? String(text.dropFirst(9)) : text
            self = .registry(try Reference(parsing: ref))
        }
    }

    public var description: String {
        switch self {
        case .registry(let r): return r.description
        case .layout(let d, let t): return "oci:\(d)" + (t.map { ":\($0)" } ?? "")
        case .archive(let f, let t): return "oci-archive:\(f)" + (t.map { ":\($0)" } ?? "")
        }
    }
}

/// A local OCI image layout (`index.json` + `blobs/ALG/HEX`), as umoci and skopeo write it.
/// Blobs are verified against their digests before use, like registry blobs.
public struct OCILayout: Sendable {
    public let directory: String
    public let tag: String?

    public init(directory: String, tag: String?) {
        self.directory = directory
        self.tag = tag
    }

    static let refAnnotation = "org.opencontainers.image.ref.name"

    public func blobPath(_ digest: Digest) -> String {
        "\(directory)/blobs/\(digest.algorithm.rawValue)/\(digest.hex)"
    }

    var name: String { "oci:\(directory)" + (tag.map { ":\($0)" } ?? "") }

    public func resolve(platform: Platform) throws(RegistryError) -> ResolvedImage {
        let indexBytes: [UInt8]
        do { indexBytes = try FileSystem.readRegularFile("\(directory)/index.json", maximumBytes: RegistryClient.maximumManifestBytes) } catch {
            throw .layout(name: name, reason: error.code == ENOENT ? "no index.json: not an OCI image layout" : "index.json: \(error.reason ?? error.description)")
        }
        let index: Index
        do { index = try JSONDecoder().decode(Index.self, from: Data(indexBytes)) } catch {
            throw .invalidManifest(what: "\(directory)/index.json", reason: "does not parse")
        }
        let wanted = tag ?? "latest"
        let tagged = index.manifests.filter { $0.annotations?[Self.refAnnotation] == wanted }
        var chosen = tagged.first
        if tagged.count > 1 {
            // One tag on several manifests (one per platform): the platform decides.
            chosen = Index(schemaVersion: index.schemaVersion, mediaType: nil, manifests: tagged).manifest(for: platform)
            guard chosen != nil else {
                throw .noPlatform(image: name, platform: platform, available: tagged.compactMap { $0.platform?.description })
            }
        }
        if chosen == nil && tag == nil && index.manifests.count == 1 { chosen = index.manifests[0] }
        guard let top = chosen else {
            let tags = index.manifests.compactMap { $0.annotations?[Self.refAnnotation] }
            throw .layout(name: name, reason: "no image tagged \(wanted) (tags in the layout: \(tags.isEmpty ? "none" : tags.joined(separator: ", ")))")
        }
        let topBody = try readVerified(top)
        return try RegistryClient.resolve(name: name, top: (topBody, top.mediaType, top.digest), platform: platform) {
            (d) throws(RegistryError) in try readVerified(d)
        }
    }

    private func missing(_ d: Descriptor, _ error: FileError) -> RegistryError {
        if error.code == EFBIG { return .layout(name: name, reason: "blob \(d.digest) is larger than its descriptor's \(d.size) bytes") }
        if let reason = error.reason { return .layout(name: name, reason: "blob \(d.digest) is \(reason)") }
        return .layout(name: name, reason: "blob \(d.digest) is missing (\(error))")
    }

    /// Reads a small blob (manifest, config) and checks its size and digest.
    func readVerified(_ d: Descriptor) throws(RegistryError) -> [UInt8] {
        guard d.size >= 0, d.size <= RegistryClient.maximumManifestBytes else {
            throw .invalidManifest(what: name, reason: "\(d.digest) has size \(d.size); a manifest or index holds at most \(RegistryClient.maximumManifestBytes) bytes")
        }
        let bytes: [UInt8]
        do { bytes = try FileSystem.readRegularFile(blobPath(d.digest), maximumBytes: Int(d.size)) } catch {
            if error.code == EFBIG { throw .sizeMismatch(what: "blob \(d.digest)", expected: d.size, actual: d.size + 1) }
            throw missing(d, error)
        }
        guard Int64(bytes.count) == d.size else { throw .sizeMismatch(what: "blob \(d.digest)", expected: d.size, actual: Int64(bytes.count)) }
        let hex: String
        do throws(CryptoError) { hex = try Digester.hash(d.digest.algorithm.digester, bytes).hexString } catch { throw .crypto(error) }
        guard hex == d.digest.hex else { throw .digestMismatch(what: "blob \(d.digest)", expected: d.digest, actual: hex) }
        return bytes
    }

    /// Checks a (large) blob in place by streaming it through the hasher; returns its path.
    public func verifyBlob(_ d: Descriptor, progress: (Int64) -> Void = { _ in }) throws(RegistryError) -> String {
        let path = blobPath(d.digest)
        let hasher: Digester
        do throws(CryptoError) { hasher = try Digester(d.digest.algorithm.digester) } catch { throw .crypto(error) }
        var total: Int64 = 0
        do throws(FileError) {
            // Its type and size first: a FIFO or /dev/zero in place of a blob would never end.
            let file = try FileHandleFD.readRegular(path, maximumBytes: d.size)
            while total <= d.size {
                let chunk = try file.read(upTo: 1 << 20)
                if chunk.isEmpty { break }
                hasher.update(chunk)
                total += Int64(chunk.count)
                progress(total)
            }
        } catch {
            throw missing(d, error)
        }
        guard total == d.size else { throw .sizeMismatch(what: "blob \(d.digest)", expected: d.size, actual: total) }
        let hex = hasher.finalize().hexString
        guard hex == d.digest.hex else { throw .digestMismatch(what: "blob \(d.digest)", expected: d.digest, actual: hex) }
        return path
    }
}
