/// Why an image cannot become boot artifacts. Messages tell the image author what to change.
public enum ConversionError: Error, CustomStringConvertible, Sendable {
    case missingKernel
    case kernelNotAFile(String)
    case missingInit
    case initNotExecutable(target: String, mode: UInt32)
    case initNotAFile(String)
    case cmdlineUnreadable(String)
    case symlinkLoop(String)
    case unsafePath(layer: Int, path: String)
    case danglingHardlink(layer: Int, path: String, target: String)
    /// A member whose parent path a symlink leads to `target`, which is not a directory.
    case notADirectory(layer: Int, path: String, target: String)
    case layer(index: Int, digest: String, ArchiveError)
    case archive(ArchiveError)
    case file(FileError)
    case registry(RegistryError)
    /// The image is not signed by a trusted key (or its signatures could not be read).
    case signature(SignatureError)
    case notEnoughMemory(needed: Int64, available: Int64)
    /// A member that Linux could not hold: a path, name or link target past its limits.
    case beyondLimit(layer: Int, path: String, what: String, limit: Int)
    /// The merged tree would cost more than `TreeLimits` allows (work or memory).
    case tooCostly(layer: Int, what: String)
    /// The image unpacks to more than the machine that boots it could hold in RAM.
    case tooLargeUnpacked(bytes: Int64, limit: Int64, source: String)

    /// One line: values from the image are shown escaped and shortened (`Message`).
    public var description: String { Message.oneLine(text) }

    private var text: String {
        switch self {
        case .missingKernel:
            return "the image has no /boot/wyrcan.kernel: install a kernel in the image and symlink it there (e.g. ln -s vmlinuz-6.1.0-13-amd64 /boot/wyrcan.kernel)"
        case .kernelNotAFile(let p):
            return "/boot/wyrcan.kernel resolves to \(p), which is not a regular file; point it at the kernel image (vmlinuz)"
        case .missingInit:
            return "the image has no /init: symlink its init system there (e.g. ln -s /lib/systemd/systemd /init) or add an executable /init"
        case .initNotExecutable(let target, let mode):
            return "/init (\(target)) is not executable (mode \(String(mode, radix: 8))); chmod +x it in the image"
        case .initNotAFile(let p):
            return "/init resolves to \(p), which is not an executable file inside the image"
        case .cmdlineUnreadable(let why):
            return "/boot/wyrcan.cmdline: \(why)"
        case .symlinkLoop(let p):
            return "\(Message.quoted(p)): too many levels of symbolic links inside the image"
        case .unsafePath(let layer, let path):
            return "layer \(layer + 1): entry \(Message.quoted(path)) points outside the image root ('..'); refusing the layer"
        case .danglingHardlink(let layer, let path, let target):
            return "layer \(layer + 1): hard link \(Message.quoted(path)) points to \(Message.quoted(target)), which no earlier entry provides"
        case .notADirectory(let layer, let path, let target):
            return "layer \(layer + 1): \(Message.quoted(path)) leads through a symlink to \(Message.quoted(target)), which is not a directory; refusing the layer"
        case .beyondLimit(let layer, let path, let what, let limit):
            return "layer \(layer + 1): \(Message.quoted(path)): \(what) is longer than the \(limit) bytes Linux allows; refusing the layer"
        case .tooCostly(let layer, let what):
            return "layer \(layer + 1): \(what); refusing the image"
        case .tooLargeUnpacked(let bytes, let limit, let source):
            return "the image unpacks to \(Self.gib(bytes)), more than the \(Self.gib(limit)) \(source); its whole tree lives in RAM as an initramfs: slim the image"

        case .layer(let index, let digest, let e):
            return "layer \(index + 1) (\(digest)): \(e.message)"
        case .archive(let e): return e.description
        case .file(let e): return e.description
        case .registry(let e): return e.description
        case .signature(let e): return e.description
        case .notEnoughMemory(let needed, let available):
            return "the image needs about \(needed >> 20) MiB of RAM to download and convert, but only \(available >> 20) MiB are available; give the machine more memory or slim the image"
        }
    }
}

extension ConversionError {
    /// Rounded down to a tenth; any size (an image's total saturates at `Int64.max`).
    static func gib(_ bytes: Int64) -> String {
        let gib: Int64 = 1 << 30
        return "\(bytes / gib).\(bytes % gib * 10 / gib) GiB"
    }

    /// Whether trying again cannot help: the image itself is at fault (its blobs are
    /// digest-verified, so fetching them again gives the same bytes), the registry refused for
    /// good (no image for this platform, credentials refused), or the machine has too little RAM.
    /// The boot agent retries everything else (network, registry and disk errors).
    public var isPermanent: Bool {
        switch self {
        case .missingKernel, .kernelNotAFile, .missingInit, .initNotExecutable, .initNotAFile, .cmdlineUnreadable,
             .symlinkLoop, .unsafePath, .danglingHardlink, .notADirectory, .archive, .notEnoughMemory,
             .beyondLimit, .tooCostly, .tooLargeUnpacked:
            return true
        case .registry(.noPlatform), .registry(.unauthorized):
            return true
        // (Signatures are digest-addressed like the image: asking again finds the same ones.)
        case .signature(.unsigned), .signature(.rejected), .signature(.notARegistryImage), .signature(.policy):
            return true
        case .registry, .signature(.registry), .layer, .file:
            return false
        }
    }
}
