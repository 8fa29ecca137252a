/// An Ethernet MAC address, parsed from any common notation and stored as `aa:bb:cc:dd:ee:ff`.
public struct MACAddress: Hashable, Comparable, CustomStringConvertible, Sendable {
    public let bytes: [UInt8]

    /// Accepts `aa:bb:cc:dd:ee:ff`, `aa-bb-cc-dd-ee-ff`, `aabbccddeeff`, `aabb.ccdd.eeff`, any case,
    /// ASCII only (a full-width `ｆ` is not a hex digit here).
    public init?(_ text: String) {
        let utf8 = Array(text.utf8)
        guard utf8.count <= 17 else { return nil }
        let separators = utf8.filter { $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") }
        let digits = utf8.filter { !separators.contains($0) }.map(Self.hexValue)
        guard digits.count == 12, digits.allSatisfy({ $0 != nil }) else { return nil }
        // Separators must be consistent with one of the notations.
        let dots = separators.count == 2 && separators.allSatisfy { $0 == UInt8(ascii: ".") }
        guard separators.isEmpty || (separators.count == 5 && Set(separators).count == 1) || dots else { return nil }
        bytes = stride(from: 0, to: 12, by: 2).map { UInt8(digits[$0]! << 4 | digits[$0 + 1]!) }
    }

    public init?(bytes: [UInt8]) {
        guard bytes.count == 6 else { return nil }
        self.bytes = bytes
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    public var description: String { bytes.hexString.enumerated().reduce(into: "") { out, c in
        if c.offset > 0 && c.offset % 2 == 0 { out.append(":") }
        out.append(c.element)
    } }

    public static func < (a: MACAddress, b: MACAddress) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }
}
