import Foundation

/// A small deterministic PRNG so property tests are reproducible.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func pick<T>(_ items: [T]) -> T { items[Int(next() % UInt64(items.count))] }

    mutating func string(from alphabet: [String], maxLength: Int, minLength: Int = 0) -> String {
        let n = minLength + Int(next() % UInt64(maxLength - minLength + 1))
        return (0..<n).map { _ in pick(alphabet) }.joined()
    }
}

enum Alphabet {
    static let keyChars = "abcdefghijklmnopqrstuvwxyz0123456789_-.".map(String.init)
    /// Characters a bare (unquoted) value may hold: no whitespace, no '"', no 0xA0 byte.
    static let bareChars = "abcxyzABC0123456789=,.:;/$'\\{}-_@".map(String.init) + ["é", "日", "ß", "${net0/mac}"]
    /// Characters for quoted values: anything but '"'.
    static let valueChars = bareChars + [" ", " ", "\t", "à", "\n", "'", "\\'"]
}

/// `unit` repeated up to `count` bytes (compressible test data, made fast in debug builds).
func repeated(_ unit: [UInt8], count: Int) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: count)
    out.withUnsafeMutableBytes { target in
        unit.withUnsafeBytes { source in
            var offset = 0
            while offset < count {
                let n = min(source.count, count - offset)
                (target.baseAddress! + offset).copyMemory(from: source.baseAddress!, byteCount: n)
                offset += n
            }
        }
    }
    return out
}

/// An empty directory of this name under the temporary directory (removed first if it exists).
func freshTemporaryDirectory(_ name: String) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(getpid())").path
    try? FileManager.default.removeItem(atPath: dir)
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}
