/// Values as they may appear in a one-line message: an error, a log line, a console line.
/// Input from an image, a registry, an inventory or a request can hold anything; a message must
/// stay one line (a newline would forge another), free of terminal escapes, and short.
public enum Message {
    /// How much of a quoted value a message shows.
    public static let defaultLimit = 120

    /// `value` in double quotes, its control characters and invalid bytes escaped, cut to
    /// `limit` characters with what was left out said (`…(+N bytes)`).
    public static func quoted<S: StringProtocol>(_ value: S, limit: Int = defaultLimit, quotes: Bool = true) -> String {
        var out = ""
        var shown = 0
        var shownBytes = 0
        for scalar in value.unicodeScalars {
            if shown == limit {
                out += "…(+\(value.utf8.count - shownBytes) bytes)"
                break
            }
            out += escaped(scalar, quote: quotes)
            shown += 1
            shownBytes += UTF8.width(scalar)
        }
        return quotes ? "\"" + out + "\"" : out
    }

    /// A whole message made one line: control characters escaped, nothing cut.
    public static func oneLine(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars { out += escaped(scalar, quote: false) }
        return out
    }

    /// Bytes that may not be UTF-8 (a file name in a layer), shown with `\xNN` for what is not.
    public static func quoted(bytes: [UInt8], limit: Int = defaultLimit) -> String {
        var text = ""
        var index = 0
        while index < bytes.count {
            let (scalar, length) = decodeScalar(bytes, at: index)
            if let scalar { text.unicodeScalars.append(scalar) } else { text += "\\x" + [bytes[index]].hexString }
            index += length
        }
        // The \x escapes are already safe; quoting again only escapes control characters.
        return quoted(text, limit: limit)
    }

    /// A scalar as a message shows it; `quote`: inside a quoted value, where `"` is escaped too.
    static func escaped(_ scalar: Unicode.Scalar, quote: Bool) -> String {
        switch scalar {
        case "\n": return "\\n"
        case "\r": return "\\r"
        case "\t": return "\\t"
        case "\"" where quote: return "\\\""
        default:
            let v = scalar.value
            // C0, DEL, C1 (terminal escapes), the line and paragraph separators, bidi overrides.
            if v < 0x20 || (0x7F...0x9F).contains(v) || v == 0x2028 || v == 0x2029 || (0x202A...0x202E).contains(v) || (0x2066...0x2069).contains(v) {
                return "\\u{" + String(v, radix: 16, uppercase: true) + "}"
            }
            return String(scalar)
        }
    }

    /// One UTF-8 scalar at `index` and its length, or nil (and length 1) for an invalid byte.
    static func decodeScalar(_ bytes: [UInt8], at index: Int) -> (Unicode.Scalar?, Int) {
        var iterator = bytes[index...].makeIterator()
        var decoder = UTF8()
        switch decoder.decode(&iterator) {
        case .scalarValue(let s): return (s, UTF8.width(s))
        default: return (nil, 1)
        }
    }
}
