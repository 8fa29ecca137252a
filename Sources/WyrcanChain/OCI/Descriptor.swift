/// An OCI content descriptor: what a blob is, how big, and its digest.
public struct Descriptor: Sendable, Hashable, Codable {
    public var mediaType: String
    public var digest: Digest
    public var size: Int64
    public var platform: Platform?
    public var annotations: [String: String]?
    public var urls: [String]?

    public init(mediaType: String, digest: Digest, size: Int64, platform: Platform? = nil, annotations: [String: String]? = nil) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.platform = platform
        self.annotations = annotations
    }

    /// An index entry that is an image manifest (some indexes leave the media type out).
    var isManifestEntry: Bool { MediaType.isManifest(mediaType) || mediaType.isEmpty }
}

/// An image manifest (OCI or Docker v2 schema 2).
public struct Manifest: Sendable, Codable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var config: Descriptor
    public var layers: [Descriptor]

    /// The layers' (compressed) bytes in all: what a pull downloads.
    public var layersSize: Int64 { layers.reduce(0) { $0 + $1.size } }
}

/// An image index (OCI) or manifest list (Docker): one manifest per platform.
public struct Index: Sendable, Codable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var manifests: [Descriptor]

    /// The manifest for `platform`: its own variant first, else the best one it can run (see
    /// `Platform.variantRank`); the first of equals in the index's order.
    public func manifest(for platform: Platform) -> Descriptor? {
        var best: (descriptor: Descriptor, rank: Int)? = nil
        for d in manifests where d.isManifestEntry {
            guard let p = d.platform, platform.hasOSAndArchitecture(of: p),
                  let rank = platform.variantRank(of: p.variant) else { continue }
            if best == nil || rank > best!.rank { best = (d, rank) }
        }
        return best?.descriptor
    }
}

/// The parts of an image config Wyrcan reads.
public struct ImageConfig: Sendable, Codable {
    public struct Rootfs: Sendable, Codable {
        public var type: String
        public var diff_ids: [Digest]
    }
    public var architecture: String?
    public var os: String?
    public var rootfs: Rootfs?
}
