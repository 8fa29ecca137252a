/// An Ethernet MAC address, parsed from any common notation and stored as `aa:bb:cc:dd:ee:ff`.
struct MACAddress: Hashable, Comparable, CustomStringConvertible, Sendable {
    let bytes: [UInt8]

    /// Accepts `aa:bb:cc:dd:ee:ff`, `aa-bb-cc-dd-ee-ff`, `aabbccddeeff`, `aabb.ccdd.eeff`, any case.
    init?(_ text: String) {
        let hex = text.filter { $0 != ":" && $0 != "-" && $0 != "." }
        guard hex.count == 12, text.count <= 17 else { return nil }
        var bytes: [UInt8] = []
        var chars = hex.makeIterator()
        while let hi = chars.next(), let lo = chars.next() {
            guard let h = hi.hexDigitValue, let l = lo.hexDigitValue else { return nil }
            bytes.append(UInt8(h * 16 + l))
        }
        // Separators must be consistent with one of the notations.
        let separators = text.filter { $0 == ":" || $0 == "-" || $0 == "." }
        guard separators.isEmpty || (separators.count == 5 && Set(separators).count == 1) || separators == ".." else { return nil }
        self.bytes = bytes
    }

    var description: String { bytes.map { String($0, radix: 16).leftPadded(2) }.joined(separator: ":") }

    static func < (a: MACAddress, b: MACAddress) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
