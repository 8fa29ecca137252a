/// Finds YAML aliases (`*name`) used as mapping keys before the text is composed. An alias can
/// stand for a node built of aliases, so a few hundred bytes can name a tree of billions of
/// nodes; Yams hashes every mapping key to find duplicates, and would walk such a tree whole.
/// As values they cost nothing (the loader reads only the shapes it expects), so only keys are
/// refused. A lexical scan: quoted scalars and comments are skipped; text inside a block scalar
/// (`|`, `>`) that looks like `*name:` at the start of a line is taken for an alias key too.
public enum YAMLAliasCheck {
    /// The line (1-based) of the first alias used as a mapping key, or nil.
    public static func firstAliasKey(in text: String) -> Int? {
        var scanner = Scanner(bytes: Array(text.utf8))
        return scanner.run()
    }

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0
        var line = 1
        /// A node may begin here (line start, after `- `, `? `, `: `, `[`, `{`, `,`).
        var atNodeStart = true
        /// After `? `: the next node, on this line or a later one, is a key.
        var explicitKey = false
        /// The flow collections we are in, innermost last: `{` or `[`.
        var flow: [UInt8] = []
        /// In a flow mapping, whether the next node is a key (after `{` or `,`) or a value (after `:`).
        var flowKeyNext = false
        /// The last byte was a blank (or the line started): a `#` begins a comment only then.
        var afterBlank = true

        init(bytes: [UInt8]) { self.bytes = bytes }

        func byte(_ offset: Int = 0) -> UInt8? { index + offset < bytes.count ? bytes[index + offset] : nil }

        /// The length of a line break at `index` (LF, CR LF, CR, NEL, LS, PS), or 0.
        func lineBreak() -> Int {
            switch (byte(), byte(1), byte(2)) {
            case (0x0D, 0x0A, _): return 2
            case (0x0A, _, _), (0x0D, _, _): return 1
            case (0xC2, 0x85, _): return 2
            case (0xE2, 0x80, 0xA8), (0xE2, 0x80, 0xA9): return 3
            default: return 0
            }
        }

        static func isBlank(_ b: UInt8?) -> Bool { b == nil || b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }
        static func isFlowIndicator(_ b: UInt8?) -> Bool { b == UInt8(ascii: ",") || b == UInt8(ascii: "]") || b == UInt8(ascii: "}") }
        static func isAnchorCharacter(_ b: UInt8) -> Bool {
            (b >= 0x30 && b <= 0x39) || (b | 0x20 >= 0x61 && b | 0x20 <= 0x7A) || b == UInt8(ascii: "_") || b == UInt8(ascii: "-")
        }

        mutating func run() -> Int? {
            while index < bytes.count {
                let breakLength = lineBreak()
                if breakLength > 0 {
                    line += 1
                    atNodeStart = true
                    afterBlank = true
                    index += breakLength
                    continue
                }
                let c = bytes[index]
                if c == 0x20 || c == 0x09 {
                    afterBlank = true
                    index += 1
                    continue
                }
                if let aliasLine = token(c) { return aliasLine }
            }
            return nil
        }

        /// One token at `index`; the line of an alias key when it is one.
        mutating func token(_ c: UInt8) -> Int? {
            defer { afterBlank = false }
            switch c {
            case UInt8(ascii: "#") where afterBlank:
                while index < bytes.count && lineBreak() == 0 { index += 1 }
            case UInt8(ascii: "\""), UInt8(ascii: "'"):
                // (A quote inside a plain scalar, as in `it's`, starts nothing.)
                if atNodeStart { skipQuoted(c); consumedNode() } else { index += 1 }
                atNodeStart = false
            case UInt8(ascii: "-"), UInt8(ascii: "?"):
                if atNodeStart && Self.isBlank(byte(1)) {
                    if c == UInt8(ascii: "?") { explicitKey = true }
                } else {
                    atNodeStart = false
                    consumedNode()
                }
                index += 1
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                flow.append(c)
                flowKeyNext = c == UInt8(ascii: "{")
                atNodeStart = true
                index += 1
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                _ = flow.popLast()
                flowKeyNext = false
                atNodeStart = false
                index += 1
            case UInt8(ascii: ","):
                flowKeyNext = flow.last == UInt8(ascii: "{")
                atNodeStart = true
                index += 1
            case UInt8(ascii: ":"):
                if Self.isBlank(byte(1)) || Self.isFlowIndicator(byte(1)) || !flow.isEmpty {
                    atNodeStart = true
                    flowKeyNext = false
                    explicitKey = false
                }
                index += 1
            case UInt8(ascii: "*") where atNodeStart:
                if aliasIsKey() { return line }
                atNodeStart = false
            default:
                atNodeStart = false
                consumedNode()
                index += 1
            }
            return nil
        }

        /// A node was read: an explicit key (`? `) has had its key.
        mutating func consumedNode() { explicitKey = false }

        /// At `*name`: whether it is a key — after `? `, in a flow mapping's key position, or
        /// followed by a `:` that ends a key. Names are what libyaml reads as one: letters,
        /// digits, `_` and `-`.
        mutating func aliasIsKey() -> Bool {
            index += 1
            while let b = byte(), Self.isAnchorCharacter(b) { index += 1 }
            if explicitKey || (flow.last == UInt8(ascii: "{") && flowKeyNext) { return true }
            consumedNode()
            var look = index
            while look < bytes.count, bytes[look] == 0x20 || bytes[look] == 0x09 { look += 1 }
            guard look < bytes.count, bytes[look] == UInt8(ascii: ":") else { return false }
            let after = look + 1 < bytes.count ? bytes[look + 1] : nil
            return Self.isBlank(after) || Self.isFlowIndicator(after) || !flow.isEmpty
        }

        /// A quoted scalar: `"…"` with backslash escapes, `'…'` with `''` for a quote.
        mutating func skipQuoted(_ quote: UInt8) {
            index += 1
            while let b = byte() {
                let breakLength = lineBreak()
                if breakLength > 0 { line += 1; index += breakLength; continue }
                if quote == UInt8(ascii: "\"") && b == UInt8(ascii: "\\") { index += 2; continue }
                if b == quote {
                    if quote == UInt8(ascii: "'") && byte(1) == quote { index += 2; continue }
                    index += 1
                    return
                }
                index += 1
            }
        }
    }
}
