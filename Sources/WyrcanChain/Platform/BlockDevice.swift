#if canImport(Glibc)
import Glibc
#endif

/// What Wyrcan needs to know about a disk before it mounts or formats it: whether it holds an
/// ext2/3/4 filesystem (and its label and UUID), or nothing at all.
public struct BlockDevice: Sendable, Equatable {
    public let path: String

    public init(path: String) { self.path = path }

    /// An ext2/3/4 superblock's identity.
    public struct ExtFilesystem: Sendable, Equatable {
        public var label: String
        public var uuid: String
    }

    /// The ext2/3/4 filesystem on the device, or nil when it holds none.
    public func extFilesystem() throws(FileError) -> ExtFilesystem? {
        let head = try readHead(2048)
        guard head.count == 2048 else { return nil }
        // The superblock starts at byte 1024: s_magic at 0x38 (little endian 0xEF53), s_uuid at 0x68, s_volume_name at 0x78.
        guard head[1024 + 0x38] == 0x53, head[1024 + 0x39] == 0xEF else { return nil }
        let labelBytes = head[(1024 + 0x78)..<(1024 + 0x88)].prefix { $0 != 0 }
        let u = Array(head[(1024 + 0x68)..<(1024 + 0x78)])
        let uuid = [u[0..<4], u[4..<6], u[6..<8], u[8..<10], u[10..<16]].map { Array($0).hexString }.joined(separator: "-")
        return ExtFilesystem(label: String(decoding: labelBytes, as: UTF8.self), uuid: uuid)
    }

    /// True when the first and the last MiB (or the whole device, if smaller) are zeros: no
    /// partition table (nor GPT's backup at the end), no filesystem or RAID signature at either
    /// end, nothing a user could lose. Only such a device is ever formatted.
    public func isBlank() throws(FileError) -> Bool {
        guard try readHead(1 << 20).allSatisfy({ $0 == 0 }) else { return false }
        let file = try FileHandleFD.read(path)
        let size = Int64(lseek(file.fd, 0, SEEK_END))
        guard size > 1 << 20 else { return true }
        guard lseek(file.fd, off_t(max(1 << 20, size - (1 << 20))), SEEK_SET) >= 0 else { throw .last("seek", path) }
        while true {
            let chunk = try file.read(upTo: 1 << 16)
            if chunk.isEmpty { return true }
            if !chunk.allSatisfy({ $0 == 0 }) { return false }
        }
    }

    private func readHead(_ count: Int) throws(FileError) -> [UInt8] {
        let file = try FileHandleFD.read(path)
        var bytes: [UInt8] = []
        while bytes.count < count {
            let chunk = try file.read(upTo: count - bytes.count)
            if chunk.isEmpty { break }
            bytes += chunk
        }
        return bytes
    }

    /// The kernel's block devices (disks and partitions) as `/dev/NAME`, without loop, RAM and
    /// optical devices.
    public static func all() -> [BlockDevice] {
        let names = (try? FileSystem.list("/sys/class/block")) ?? []
        return names.sorted()
            .filter { name in !["loop", "ram", "sr", "zram", "fd"].contains { name.hasPrefix($0) } }
            .map { BlockDevice(path: "/dev/" + $0) }
    }
}
