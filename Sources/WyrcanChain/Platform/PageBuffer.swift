#if canImport(Glibc)
import Glibc
#endif

/// A byte buffer of fixed capacity in memory mapped once and reused: refilling it costs no
/// allocation and no page faults for the pages an earlier fill touched. Only touched pages take
/// RAM; `release(above:)` hands back the pages past a limit after an unusually large fill.
final class PageBuffer {
    let capacity: Int
    private(set) var count = 0
    private let base: UnsafeMutableRawPointer
    /// Bytes from the start that may be resident (the furthest fill since the last release).
    private var touched = 0

    init(capacity: Int) throws(ArchiveError) {
        let size = Self.roundedToPages(max(capacity, 1))
        let address = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let address, address != MAP_FAILED else {
            throw ArchiveError(operation: "compress", message: "cannot map \(size) bytes: \(String(cString: strerror(errno)))")
        }
        base = address
        self.capacity = size
    }

    deinit { munmap(base, capacity) }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
    var isEmpty: Bool { count == 0 }
    var room: Int { capacity - count }

    /// Appends `bytes`; the caller keeps within `room`.
    func append(_ bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count <= room, "PageBuffer overflow")
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        (base + count).copyMemory(from: source, byteCount: bytes.count)
        count += bytes.count
        touched = max(touched, count)
    }

    /// Empties the buffer (its pages stay, for the next fill).
    func removeAll() { count = 0 }

    /// Empties the buffer and hands the pages past `limit` back to the kernel, if a fill went
    /// past it.
    func release(above limit: Int) {
        count = 0
        let keep = Self.roundedToPages(limit)
        guard touched > keep else { return }
        _ = madvise(base + keep, capacity - keep, MADV_DONTNEED)
        touched = keep
    }

    private static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
    private static func roundedToPages(_ n: Int) -> Int { (n + pageSize - 1) / pageSize * pageSize }
}
