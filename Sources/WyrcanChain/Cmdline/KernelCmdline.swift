/// One parameter of a Linux kernel command line, split exactly as the kernel's `next_arg()`
/// (lib/cmdline.c) splits it.
public struct KernelParameter: Sendable, Hashable {
    /// The parameter as it appears on the cmdline, quotes included: re-joining raw texts with a
    /// space reproduces a cmdline that the kernel splits into the same parameters.
    public var raw: String
    /// The part before the first `=` (a leading `"` removed), or the whole parameter if there is none.
    public var key: String
    /// The part after the first `=`, with one pair of enclosing quotes removed; nil without `=`.
    public var value: String?
    /// The parameter opened a `"` that never closed: the kernel lets it run to the end of the cmdline.
    public var unterminatedQuote: Bool
    /// False when the kernel's split left a broken UTF-8 sequence (see `KernelCmdline.isSpace`).
    public var isValidUTF8: Bool

    public init(raw: String, key: String, value: String?, unterminatedQuote: Bool = false, isValidUTF8: Bool = true) {
        self.raw = raw
        self.key = key
        self.value = value
        self.unterminatedQuote = unterminatedQuote
        self.isValidUTF8 = isValidUTF8
    }
}

/// The kernel's outer cmdline grammar: whitespace separates parameters, `"` toggles quoting
/// (whitespace inside quotes does not separate), the first `=` splits key from value, and there
/// is no escape character. Works on bytes like the kernel does.
public enum KernelCmdline {
    /// The x86 and arm64 kernels keep at most 2048 bytes of cmdline, including the final NUL.
    public static let maximumLength = 2047

    /// The kernel's `isspace()`: its ctype table also marks 0xA0 (Latin-1 NBSP) as space, so a
    /// UTF-8 character containing that byte (such as "à") splits an unquoted parameter.
    @inline(__always)
    public static func isSpace(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x20, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0xA0: return true
        default: return false
        }
    }

    /// Splits a cmdline into parameters, exactly as the kernel's `parse_args()` would.
    public static func tokenize(_ cmdline: String) -> [KernelParameter] {
        tokenize(bytes: Array(cmdline.utf8))
    }

    public static func tokenize(bytes: [UInt8]) -> [KernelParameter] {
        var result: [KernelParameter] = []
        var index = 0
        let count = bytes.count
        while index < count && isSpace(bytes[index]) { index += 1 }
        while index < count {
            let tokenStart = index
            var start = index
            var inQuote = false
            var quoted = false
            if bytes[start] == UInt8(ascii: "\"") {
                start += 1
                inQuote = true
                quoted = true
            }
            var end = start
            var equals: Int? = nil
            while end < count {
                let byte = bytes[end]
                if isSpace(byte) && !inQuote { break }
                // Like the kernel, an '=' at the very first position does not count as a split.
                if equals == nil && byte == UInt8(ascii: "=") && end > start { equals = end }
                if byte == UInt8(ascii: "\"") { inQuote.toggle() }
                end += 1
            }
            let lastIsQuote = end > start && bytes[end - 1] == UInt8(ascii: "\"")
            var keyEnd = equals ?? end
            var value: String? = nil
            if let equals {
                var valueStart = equals + 1
                var valueEnd = end
                if valueStart < end && bytes[valueStart] == UInt8(ascii: "\"") {
                    valueStart += 1
                    if lastIsQuote && valueEnd > valueStart { valueEnd -= 1 }
                } else if quoted && lastIsQuote && valueEnd > valueStart {
                    valueEnd -= 1
                }
                value = string(bytes[valueStart..<max(valueStart, valueEnd)])
            } else if quoted && lastIsQuote && end > start {
                keyEnd = end - 1
            }
            let key = string(bytes[start..<keyEnd])
            let rawBytes = bytes[tokenStart..<end]
            result.append(KernelParameter(
                raw: string(rawBytes), key: key, value: value,
                unterminatedQuote: inQuote, isValidUTF8: String(validating: rawBytes, as: UTF8.self) != nil))
            index = end
            while index < count && isSpace(bytes[index]) { index += 1 }
        }
        return result
    }

    /// Whether `text` is a single parameter that the kernel reads back unchanged.
    public static func isSingleParameter(_ text: String) -> Bool {
        let parts = tokenize(text)
        return parts.count == 1 && parts[0].raw == text && !parts[0].unterminatedQuote
    }

    /// Renders `key=value` so that the kernel splits it back into exactly this key and value:
    /// the value is quoted when it holds whitespace (or any non-ASCII byte, which may hold 0xA0).
    /// Returns nil when the kernel grammar cannot carry the value (it contains `"`, or the key is
    /// empty or contains whitespace, `=` or `"`).
    public static func render(key: String, value: String?) -> String? {
        guard !key.isEmpty, !key.utf8.contains(where: { isSpace($0) || $0 == UInt8(ascii: "=") || $0 == UInt8(ascii: "\"") })
        else { return nil }
        guard let value else { return key }
        if value.utf8.contains(UInt8(ascii: "\"")) { return nil }
        let needsQuotes = value.isEmpty || value.utf8.contains(where: { isSpace($0) || $0 >= 0x80 })
        return needsQuotes ? "\(key)=\"\(value)\"" : "\(key)=\(value)"
    }

    private static func string(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes, as: UTF8.self)
    }
}
