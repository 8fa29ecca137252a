/// `wyr.cache=auto|/dev/DISK[,format]`: a local disk that keeps the volumes across boots, so a
/// pull only fetches what changed and `push_on=boot` can send what the previous boot wrote.
///
/// Wyrcan touches only a disk the cmdline names or one labelled `WYRCAN_CACHE`, and formats only
/// when told to (`format`) and only a blank disk (its first MiB all zeros): a disk with anything on
/// it is never formatted.
public struct CacheSpec: Sendable, Equatable, Codable {
    public enum Source: Sendable, Equatable, Codable {
        /// The first filesystem labelled `WYRCAN_CACHE`.
        case auto
        /// This block device (`/dev/vdb`, `/dev/disk/by-id/…`, `/dev/nvme0n1p3`).
        case device(String)
    }

    public static let label = "WYRCAN_CACHE"
    /// Where Wyrcan and the booted system mount the cache.
    public static let mountPoint = "/var/lib/wyrcan/cache"

    public var source: Source
    /// Format a blank device (ext4, label `WYRCAN_CACHE`).
    public var format = false

    public init(source: Source, format: Bool = false) {
        self.source = source
        self.format = format
    }

    public init(parsing text: String, parameter: String = "wyr.cache") throws(CmdlineError) {
        let fields = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        func bad(_ reason: String) -> CmdlineError { .invalidValue(parameter: parameter, value: text, reason: reason) }
        switch fields[0] {
        case "auto": source = .auto
        case let path where path.hasPrefix("/dev/") && path.count > 5 && !path.split(separator: "/").contains(".."):
            source = .device(path)
        default:
            throw bad("expected auto (the disk labelled \(Self.label)) or a block device such as /dev/sdb")
        }
        for option in fields.dropFirst() {
            switch option {
            case "format":
                guard case .device = source else {
                    throw bad("format needs a named device (wyr.cache=/dev/DISK,format); auto never formats")
                }
                format = true
            default: throw bad("unknown option '\(option)'; the only one is format")
            }
        }
    }

    /// The `wyr.cache` value that parses back to this spec.
    public var rendered: String {
        switch source {
        case .auto: return "auto"
        case .device(let path): return format ? path + ",format" : path
        }
    }

    /// Where volume `name` lives on the cache disk, relative to its root.
    public static func volumeDirectory(_ name: String) -> String { "volumes/" + name }
}
