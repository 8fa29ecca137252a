/// The nesting rule that lets `wyr.arg` values carry quotes through any number of chain stages.
///
/// The kernel's quoting has one level only (`"` toggles, no escapes), so a `wyr.arg` cannot hold a
/// double quote for the next stage directly. Wyrcan therefore decodes each `wyr.arg` value before
/// inserting it into the next kernel's cmdline:
///
/// | in a `wyr.arg` value | becomes, for the next stage |
/// | --- | --- |
/// | `'`   | `"` |
/// | `\'`  | `'` |
/// | `\\`  | `\` |
/// | any other character, including a lone `\` | itself |
///
/// One stage deep, single quotes are the double quotes of the next stage:
/// `wyr.arg="wyr.img=R/os wyr.arg='quiet log-buf-len=1M'"`. Two stages deep they are written `\'`,
/// three deep `\\\'`, and so on: `encode` produces this mechanically. Values without `'` or `\`
/// (every example of the original Wyrcan) pass through unchanged.
public enum NestedArg {
    /// The text a `wyr.arg` value inserts into the next kernel's cmdline.
    public static func decode(_ value: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(value.utf8.count)
        var bytes = value.utf8.makeIterator()
        while let byte = bytes.next() {
            switch byte {
            case UInt8(ascii: "'"):
                out.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"):
                guard let next = bytes.next() else { out.append(byte); break }
                if next == UInt8(ascii: "'") || next == UInt8(ascii: "\\") {
                    out.append(next)
                } else {
                    out.append(byte)
                    out.append(next)
                }
            default:
                out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The inverse of `decode`: a value that decodes to exactly `text` and holds no `"`.
    public static func encode(_ text: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + 8)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case UInt8(ascii: "'"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "'")])
            case UInt8(ascii: "\""): out.append(UInt8(ascii: "'"))
            default: out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// A complete `wyr.arg=…` parameter that inserts `text` into the next stage's cmdline.
    public static func parameter(for text: String, key: String = "wyr.arg") -> String {
        // encode() never yields a '"', so render() cannot fail.
        KernelCmdline.render(key: key, value: encode(text))!
    }
}
