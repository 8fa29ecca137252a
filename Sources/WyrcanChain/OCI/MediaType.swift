/// The media types Wyrcan understands, OCI and Docker v2 alike.
public enum MediaType {
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    public static let ociConfig = "application/vnd.oci.image.config.v1+json"
    public static let ociLayer = "application/vnd.oci.image.layer.v1.tar"
    public static let ociLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let ociLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
    public static let ociLayerNondistributableGzip = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerConfig = "application/vnd.docker.container.image.v1+json"
    public static let dockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"

    /// What a manifest request accepts, most wanted first.
    public static let manifestAccept = [ociIndex, dockerManifestList, ociManifest, dockerManifest]

    public static func isIndex(_ type: String?) -> Bool { type == ociIndex || type == dockerManifestList }
    public static func isManifest(_ type: String?) -> Bool { type == ociManifest || type == dockerManifest }
    /// Docker's signed schema 1 (`…manifest.v1+json`, `…v1+prettyjws`), which Wyrcan cannot boot.
    public static func isDockerSchema1(_ type: String?) -> Bool {
        type?.hasPrefix("application/vnd.docker.distribution.manifest.v1+") ?? false
    }

    /// Whether a layer media type is a tar Wyrcan can apply (compression is detected from the bytes).
    public static func isLayer(_ type: String) -> Bool {
        type.hasPrefix("application/vnd.oci.image.layer.") || type.hasPrefix("application/vnd.docker.image.rootfs.")
    }
}
