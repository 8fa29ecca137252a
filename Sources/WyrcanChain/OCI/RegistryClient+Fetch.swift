#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A manifest chosen for the platform, with everything needed to fetch its layers.
public struct ResolvedImage: Sendable {
    /// What was asked for, for messages (a registry reference or an `oci:` layout).
    public var name: String
    /// The digest of the platform manifest (what `wyrcan convert` prints).
    public var manifestDigest: Digest
    /// The digest the reference resolved to first (the index, for multi-platform images).
    public var topDigest: Digest
    public var manifest: Manifest
    public var platform: Platform
}

extension RegistryClient {
    static let maximumManifestBytes = 4 << 20

    /// Fetches and verifies a manifest by tag or digest, from the first host that has it.
    func fetchManifest(_ ref: String, expected: Digest?) throws(RegistryError) -> (body: [UInt8], mediaType: String?, digest: Digest) {
        try firstHost(hosts, notFound: "\(reference)") { (host) throws(RegistryError) in try fetchManifest(ref, expected: expected, from: host) }
    }

    private func fetchManifest(_ ref: String, expected: Digest?, from host: String) throws(RegistryError) -> (body: [UInt8], mediaType: String?, digest: Digest) {
        let ex = try exchange(host: host, url: url(host: host, "manifests/\(ref)"),
                              headers: ["Accept: " + MediaType.manifestAccept.joined(separator: ", ")],
                              maximumBody: Self.maximumManifestBytes)
        switch ex.status {
        case 200: break
        case 404: throw .notFound(what: "\(reference.registry)/\(reference.repository):\(ref)")
        case 401, 403: throw .unauthorized(registry: registryName(host), detail: "HTTP \(ex.status): \(Self.errorDetail(ex))")
        default: throw .http(status: ex.status, url: url(host: host, "manifests/\(ref)"), detail: Self.errorDetail(ex), retryAfter: ex.retryAfter)
        }
        // By digest, the body must hash to it; by tag, to the digest the registry
        // says it served (Docker-Content-Digest), when it says one.
        // (Not for Docker schema 1, whose announced digest leaves out the signatures.)
        let mediaType = ex.header("content-type")?.split(separator: ";").first.map { String($0).trimming(" ") }
        let announced = MediaType.isDockerSchema1(mediaType) ? nil : ex.header("docker-content-digest").flatMap { try? Digest(parsing: $0.trimming(" ")) }
        let check = expected ?? announced
        let hex: String
        do throws(CryptoError) { hex = try Digester.hash(check?.algorithm.digester ?? .sha256, ex.body).hexString } catch { throw .crypto(error) }
        let what = "manifest \(reference.registry)/\(reference.repository)@\(ref)" + (isMirror(host) ? " from mirror \(host)" : "")
        if let check, check.hex != hex {
            throw .digestMismatch(what: what, expected: check, actual: hex)
        }
        let digest = try! check ?? Digest(algorithm: .sha256, hex: hex)
        return (ex.body, mediaType, digest)
    }

    /// Resolves the reference to the manifest for `platform` (through an index when there is one).
    public func resolve(platform: Platform? = nil) throws(RegistryError) -> ResolvedImage {
        let platform = platform ?? options.platform
        let top = try fetchManifest(reference.manifestReference, expected: reference.digest)
        return try Self.resolve(name: reference.description, top: top, platform: platform) { (d) throws(RegistryError) in
            let m = try fetchManifest(d.digest.description, expected: d.digest)
            guard Int64(m.body.count) == d.size else {
                throw .sizeMismatch(what: "manifest \(d.digest)", expected: d.size, actual: Int64(m.body.count))
            }
            return m.body
        }
    }

    /// Shared by the registry and OCI-layout sources: index → platform manifest → parsed manifest.
    static func resolve(
        name: String, top: (body: [UInt8], mediaType: String?, digest: Digest), platform: Platform,
        fetch: (Descriptor) throws(RegistryError) -> [UInt8]
    ) throws(RegistryError) -> ResolvedImage {
        struct Probe: Decodable { var mediaType: String?; var manifests: [Descriptor]?; var layers: [Descriptor]? }
        let what = name
        guard let probe = try? JSONDecoder().decode(Probe.self, from: Data(top.body)) else {
            throw .invalidManifest(what: what, reason: "not a JSON manifest or index")
        }
        let type = probe.mediaType ?? top.mediaType
        var body = top.body
        var digest = top.digest
        if MediaType.isIndex(type) || (type == nil && probe.manifests != nil) {
            let index: Index
            do { index = try JSONDecoder().decode(Index.self, from: Data(top.body)) } catch {
                throw .invalidManifest(what: what, reason: "index does not parse: \(Self.decodingProblem(error))")
            }
            guard let chosen = index.manifest(for: platform) else {
                if let nested = index.manifests.first(where: { MediaType.isIndex($0.mediaType) && $0.platform.map(platform.hasOSAndArchitecture) != false }) {
                    throw .invalidManifest(what: what, reason: "its entry for \(platform) is itself an index (\(nested.digest)); nested indexes are not followed: name that one by digest")
                }
                throw .noPlatform(image: what, platform: platform, available: index.manifests.filter(\.isManifestEntry).compactMap { $0.platform?.description })
            }
            body = try fetch(chosen)
            digest = chosen.digest
        }
        let manifest: Manifest
        do { manifest = try JSONDecoder().decode(Manifest.self, from: Data(body)) } catch {
            throw .invalidManifest(what: what, reason: "manifest does not parse (is this an image?): \(Self.decodingProblem(error))")
        }
        for layer in manifest.layers where !MediaType.isLayer(layer.mediaType) {
            throw .invalidManifest(what: what, reason: "layer \(layer.digest) has media type \(layer.mediaType), which is not a filesystem layer")
        }
        // Sizes are added up and multiplied for room checks: a nonsense size is refused here.
        for layer in manifest.layers where layer.size < 0 || layer.size > Self.maximumLayerBytes {
            throw .invalidManifest(what: what, reason: "layer \(layer.digest) has size \(layer.size)")
        }
        return ResolvedImage(name: name, manifestDigest: digest, topDigest: top.digest, manifest: manifest, platform: platform)
    }

    /// What a JSON decoding error says, in one short line (not Swift's `DecodingError` dump).
    static func decodingProblem(_ error: any Error) -> String {
        func field(_ path: [any CodingKey]) -> String {
            path.map { $0.intValue.map { "[\($0)]" } ?? "." + $0.stringValue }.joined().trimming(".")
        }
        guard let error = error as? DecodingError else { return "not JSON" }
        switch error {
        case .keyNotFound(let key, let context): return "\(field(context.codingPath + [key])) is missing"
        case .typeMismatch(_, let context), .valueNotFound(_, let context): return "\(field(context.codingPath)) has the wrong type"
        case .dataCorrupted(let context) where context.codingPath.isEmpty: return "not JSON"
        case .dataCorrupted(let context): return "\(field(context.codingPath)) is invalid"
        @unknown default: return "not the expected JSON"
        }
    }

    /// The first byte of a `Content-Range: bytes FIRST-LAST/TOTAL` answer; nil for anything else.
    static func rangeStart(_ value: String) -> Int64? {
        let text = value.trimming(" ")
        guard text.lowercased().hasPrefix("bytes "), let dash = text.firstIndex(of: "-") else { return nil }
        return Int64(text[text.index(text.startIndex, offsetBy: 6)..<dash].trimming(" "))
    }

    /// The largest layer accepted (1 TiB): far beyond any bootable image.
    static let maximumLayerBytes: Int64 = 1 << 40

    /// Downloads a blob to `path`, verifying size and digest while streaming. An interrupted
    /// transfer resumes with `Range`; a corrupt one is retried once from scratch and then refused.
    /// On failure the file is removed.
    public func fetchBlob(_ blob: Descriptor, to path: String, progress: @escaping (Int64) -> Void = { _ in }) throws(RegistryError) {
        do {
            try fetchBlobVerified(blob, to: path, progress: progress)
        } catch {
            FileSystem.remove(path)
            throw error
        }
    }

    private func fetchBlobVerified(_ blob: Descriptor, to path: String, progress: @escaping (Int64) -> Void) throws(RegistryError) {
        var corruptRetries = 1
        // Hosts to ask; a mirror whose bytes went into a corrupt result is dropped for the retry.
        var candidates = hosts
        while true {
            let download = try BlobDownload(blob, to: path)
            try fill(download, from: candidates, progress: progress)
            let hex = download.digestHex()
            if hex == blob.digest.hex { return }
            // Mirrors that supplied bytes are not asked again: the retry goes to the others (and
            // costs no retry of the registry's own); the registry's corruption is retried once.
            let badMirrors = download.contributors.filter(isMirror)
            if !badMirrors.isEmpty {
                candidates.removeAll { badMirrors.contains($0) }
                continue
            }
            if corruptRetries == 0 { throw .digestMismatch(what: download.what, expected: blob.digest, actual: hex) }
            corruptRetries -= 1
        }
    }

    /// Fills `download` from the first of `candidates` that can, each with its retries.
    private func fill(_ download: BlobDownload, from candidates: [String], progress: @escaping (Int64) -> Void) throws(RegistryError) {
        try firstHost(candidates, notFound: download.what) { (host) throws(RegistryError) in try transfer(download, from: host, progress: progress) }
    }

    /// One transfer of the rest of a blob from `host`.
    private func transfer(_ download: BlobDownload, from host: String, progress: @escaping (Int64) -> Void) throws(RegistryError) {
        let blob = download.blob
        let blobURL = url(host: host, "blobs/\(blob.digest)")
        let response: HTTPResponse
        do throws(RegistryError) {
            response = try exchange(
                host: host, url: blobURL, headers: download.begin(host: host, url: blobURL),
                receive: { chunk in
                    guard download.accept(chunk: chunk) else { return false }
                    progress(download.received)
                    return true
                },
                onHead: { download.accept(head: $0) })
        } catch {
            try download.end()
            throw error
        }
        try download.end()
        switch response.status {
        case 200, 206: break
        case 404: throw .notFound(what: "\(download.what) of \(reference.registry)/\(reference.repository)")
        case 401, 403: throw .unauthorized(registry: registryName(host), detail: "HTTP \(response.status): \(Self.errorDetail(response))")
        case 416 where download.isComplete: break
        // Nothing left to send at the offset asked: the blob is shorter than its descriptor.
        case 416 where download.received > 0: throw .sizeMismatch(what: download.what, expected: blob.size, actual: download.received)
        default: throw .http(status: response.status, url: blobURL, detail: Self.errorDetail(response), retryAfter: response.retryAfter)
        }
        if !download.isComplete {
            // Connection closed early: transient, resumed from what arrived.
            throw .transport(.partialTransfer("transfer ended after \(download.received) of \(blob.size) bytes", url: blobURL))
        }
    }
}
