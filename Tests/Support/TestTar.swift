/// A tar writer for tests that need layers no ordinary tool writes: paths of thousands of
/// components, names that are not UTF-8, sparse members claiming gigabytes. ustar headers, with a
/// pax extended header (`x`) for what does not fit in them.
public struct TestTar {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    public enum Kind: UInt8 {
        case file = 0x30, hardlink = 0x31, symlink = 0x32, directory = 0x35
    }

    /// Adds a member; `name` is raw bytes (any, UTF-8 or not).
    public mutating func add(name: [UInt8], kind: Kind = .file, content: [UInt8] = [], linkTarget: [UInt8]? = nil,
                             mode: Int = 0o644, pax: [(String, [UInt8])] = []) {
        var records = pax
        if name.count > 99 { records.append(("path", name)) }
        if let linkTarget, linkTarget.count > 99 { records.append(("linkpath", linkTarget)) }
        if !records.isEmpty {
            let body = records.flatMap(Self.paxRecord)
            appendHeader(name: Array("PaxHeader".utf8), type: 0x78, size: body.count, linkTarget: [], mode: 0o644)
            appendData(body)
        }
        appendHeader(name: Array(name.prefix(99)), type: kind.rawValue, size: content.count, linkTarget: Array((linkTarget ?? []).prefix(99)), mode: mode)
        appendData(content)
    }

    public mutating func add(_ name: String, kind: Kind = .file, content: [UInt8] = [], linkTarget: String? = nil, mode: Int = 0o644) {
        add(name: Array(name.utf8), kind: kind, content: content, linkTarget: linkTarget.map { Array($0.utf8) }, mode: mode)
    }

    /// A PAX sparse member (GNU format 1.0): `realSize` bytes, of which only `data` at `offset`
    /// is stored; the rest are holes (zeros when read).
    public mutating func addSparse(_ name: String, realSize: Int64, offset: Int64, data: [UInt8]) {
        var map = Array("1\n\(offset)\n\(data.count)\n".utf8)
        map += [UInt8](repeating: 0, count: (512 - map.count % 512) % 512)
        add(name: Array("GNUSparseFile.0/\(name)".utf8), content: map + data, pax: [
            ("GNU.sparse.major", Array("1".utf8)), ("GNU.sparse.minor", Array("0".utf8)),
            ("GNU.sparse.name", Array(name.utf8)), ("GNU.sparse.realsize", Array(String(realSize).utf8)),
        ])
    }

    /// The archive, with its end-of-archive blocks.
    public var archive: [UInt8] { bytes + [UInt8](repeating: 0, count: 1024) }

    /// `LEN key=value\n`, LEN counting the whole record (its own digits too).
    static func paxRecord(_ record: (String, [UInt8])) -> [UInt8] {
        let rest = Array(" \(record.0)=".utf8) + record.1 + [0x0A]
        var length = rest.count + 1
        while String(length).utf8.count + rest.count != length { length = String(length).utf8.count + rest.count }
        return Array(String(length).utf8) + rest
    }

    mutating func appendHeader(name: [UInt8], type: UInt8, size: Int, linkTarget: [UInt8], mode: Int) {
        var header = [UInt8](repeating: 0, count: 512)
        func put(_ field: [UInt8], at offset: Int) { for (i, b) in field.enumerated() { header[offset + i] = b } }
        func octal(_ value: Int, width: Int) -> [UInt8] {
            let digits = String(value, radix: 8)
            return Array((String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits).utf8) + [0]
        }
        put(name, at: 0)
        put(octal(mode, width: 8), at: 100)
        put(octal(0, width: 8), at: 108)
        put(octal(0, width: 8), at: 116)
        put(octal(size, width: 12), at: 124)
        put(octal(1_700_000_000, width: 12), at: 136)
        put(Array(repeating: 0x20, count: 8), at: 148)
        header[156] = type
        put(linkTarget, at: 157)
        put(Array("ustar\0".utf8), at: 257)
        put(Array("00".utf8), at: 263)
        let sum = header.reduce(0) { $0 + Int($1) }
        put(Array(octal(sum, width: 7)) + [0x20], at: 148)
        bytes += header
    }

    mutating func appendData(_ data: [UInt8]) {
        bytes += data
        bytes += [UInt8](repeating: 0, count: (512 - data.count % 512) % 512)
    }
}
