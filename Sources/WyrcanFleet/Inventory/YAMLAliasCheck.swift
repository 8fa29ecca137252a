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
        /// The node about to begin is an explicit key (`? `).
        var explicitKey = false

        init(bytes: [UInt8]) { self.bytes = bytes }

        func byte(_ offset: Int = 0) -> UInt8? { index + offset < bytes.count ? bytes[index + offset] : nil }

        static func isBlank(_ b: UInt8?) -> Bool { b == nil || b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }
        static func isFlowIndicator(_ b: UInt8?) -> Bool { b == UInt8(ascii: ",") || b == UInt8(ascii: "]") || b == UInt8(ascii: "}") }

        mutating func run() -> Int? {
            while let c = byte() {
                switch c {
                case 0x0A:
                    line += 1
                    atNodeStart = true
                    explicitKey = false
                    index += 1
                case 0x20, 0x09, 0x0D:
                    index += 1
                case UInt8(ascii: "#"):
                    skipToLineEnd()
                case UInt8(ascii: "\""), UInt8(ascii: "'"):
                    // (A quote inside a plain scalar, as in `it's`, starts nothing.)
                    if atNodeStart { skipQuoted(c) } else { index += 1 }
                    atNodeStart = false
                case UInt8(ascii: "-"), UInt8(ascii: "?"):
                    if atNodeStart && Self.isBlank(byte(1)) { explicitKey = c == UInt8(ascii: "?") } else { atNodeStart = false }
                    index += 1
                case UInt8(ascii: "["), UInt8(ascii: "{"), UInt8(ascii: ","):
                    atNodeStart = true
                    index += 1
                case UInt8(ascii: ":"):
                    if Self.isBlank(byte(1)) || Self.isFlowIndicator(byte(1)) { atNodeStart = true; explicitKey = false }
                    index += 1
                case UInt8(ascii: "*") where atNodeStart:
                    if aliasIsKey() { return line }
                    atNodeStart = false
                default:
                    atNodeStart = false
                    index += 1
                }
            }
            return nil
        }

        /// At `*name`: whether a `:` (a key's end) follows the name, or `? ` came before it. Names
        /// are what libyaml reads as one: letters, digits, `_` and `-`.
        mutating func aliasIsKey() -> Bool {
            index += 1
            while let b = byte(), (b >= 0x30 && b <= 0x39) || (b | 0x20 >= 0x61 && b | 0x20 <= 0x7A) || b == UInt8(ascii: "_") || b == UInt8(ascii: "-") { index += 1 }
            if explicitKey { return true }
            var look = index
            while look < bytes.count, bytes[look] == 0x20 || bytes[look] == 0x09 { look += 1 }
            guard look < bytes.count, bytes[look] == UInt8(ascii: ":") else { return false }
            let after = look + 1 < bytes.count ? bytes[look + 1] : nil
            return Self.isBlank(after) || Self.isFlowIndicator(after)
        }

        mutating func skipToLineEnd() {
            while let b = byte(), b != 0x0A { index += 1 }
        }

        /// A quoted scalar: `"…"` with backslash escapes, `'…'` with `''` for a quote.
        mutating func skipQuoted(_ quote: UInt8) {
            index += 1
            while let b = byte() {
                if b == 0x0A { line += 1 }
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
