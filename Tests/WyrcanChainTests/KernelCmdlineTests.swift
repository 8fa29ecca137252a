import Testing
@testable import WyrcanChain

/// The outer grammar must match the kernel's `next_arg()` byte for byte.
@Suite struct KernelCmdlineTests {
    func split(_ s: String) -> [String] { KernelCmdline.tokenize(s).map(\.raw) }
    func kv(_ s: String) -> [String] {
        KernelCmdline.tokenize(s).map { p in p.value.map { v in "\(p.key)|\(v)" } ?? p.key }
    }

    @Test func emptyAndBlank() {
        #expect(KernelCmdline.tokenize("").isEmpty)
        #expect(KernelCmdline.tokenize(" \t\n ").isEmpty)
    }

    @Test func whitespaceSeparates() {
        #expect(kv(" \t foo=bar bat\tbaz=qux quz\t") == ["foo|bar", "bat", "baz|qux", "quz"])
        #expect(kv("a\nb\rc\u{0B}d\u{0C}e") == ["a", "b", "c", "d", "e"])
    }

    @Test func quotesToggleAndAreStrippedOnce() {
        #expect(kv("\t  foo=\"bar bat\" \"baz=qux\tquz\"  \t") == ["foo|bar bat", "baz|qux\tquz"])
        #expect(kv("wyr.arg=\"quiet log-buf-len=1M\" wyr.arg=print-fatal-signals=1")
            == ["wyr.arg|quiet log-buf-len=1M", "wyr.arg|print-fatal-signals=1"])
        // A quote in the middle toggles but is kept, as the kernel does.
        #expect(kv("a=b\"c d\"e f") == ["a|b\"c d\"e", "f"])
        // Leading quote on the value: stripped; trailing one only if it ends the parameter.
        #expect(kv("a=\"b c\"d e") == ["a|b c\"d", "e"])
        #expect(kv("\"foo bar\"") == ["foo bar"])
    }

    @Test func firstEqualsSplits() {
        #expect(kv("a=b=c") == ["a|b=c"])
        #expect(kv("log-buf-len=1M") == ["log-buf-len|1M"])
        // An '=' in the very first position does not split, like the kernel's `equals == 0` test.
        #expect(kv("=x") == ["=x"])
        #expect(kv("=a=b") == ["=a|b"])
    }

    @Test func emptyValues() {
        let t = KernelCmdline.tokenize("a= b=\"\" c")
        #expect(t.map(\.key) == ["a", "b", "c"])
        #expect(t.map(\.value) == ["", "", nil])
    }

    @Test func unbalancedQuoteRunsToTheEnd() {
        let t = KernelCmdline.tokenize("a=\"x y z")
        #expect(t.count == 1)
        #expect(t[0].value == "x y z")
        #expect(t[0].unterminatedQuote)
        #expect(!KernelCmdline.tokenize("a=\"x y\" z")[0].unterminatedQuote)
    }

    @Test func nonASCII() {
        #expect(kv("motd=héllo 日本=語") == ["motd|héllo", "日本|語"])
        // 'à' is C3 A0 in UTF-8 and the kernel's isspace(0xA0) is true: it splits unquoted...
        let split = KernelCmdline.tokenize("x=voilà y")
        #expect(split.map(\.key) == ["x", "y"])
        #expect(!split[0].isValidUTF8)
        // ...but not inside quotes.
        #expect(kv("x=\"voilà\" y") == ["x|voilà", "y"])
        #expect(KernelCmdline.tokenize("x=\"voilà\"")[0].isValidUTF8)
    }

    @Test func renderQuotesOnlyWhenNeeded() {
        #expect(KernelCmdline.render(key: "a", value: "b") == "a=b")
        #expect(KernelCmdline.render(key: "a", value: "b c") == "a=\"b c\"")
        #expect(KernelCmdline.render(key: "a", value: "") == "a=\"\"")
        #expect(KernelCmdline.render(key: "a", value: "voilà") == "a=\"voilà\"")
        #expect(KernelCmdline.render(key: "a", value: nil) == "a")
        #expect(KernelCmdline.render(key: "a", value: "x\"y") == nil)
        #expect(KernelCmdline.render(key: "a b", value: "x") == nil)
    }

    @Test func renderedValuesTokenizeBack() {
        var rng = SplitMix64(seed: 7)
        for _ in 0..<2000 {
            let value = rng.string(from: Alphabet.valueChars, maxLength: 12)
            guard let text = KernelCmdline.render(key: "k", value: value) else { continue }
            let t = KernelCmdline.tokenize(text)
            #expect(t.count == 1 && t[0].value == value, "value \(value.debugDescription) rendered as \(text)")
        }
    }

    /// Random bytes never crash the tokenizer, and its raw texts re-join into the same split.
    @Test func fuzzNeverCrashesAndRawTextsAreStable() {
        var rng = SplitMix64(seed: 42)
        let interesting: [UInt8] = [0x20, 0x09, 0x0A, 0x22, 0x3D, 0xA0, 0xC3, 0x27, 0x5C, 0x00, 0x61, 0x62, 0xFF, 0x2D]
        for _ in 0..<20_000 {
            let length = Int(rng.next() % 40)
            let bytes = (0..<length).map { _ in
                rng.next() % 3 == 0 ? UInt8(truncatingIfNeeded: rng.next()) : interesting[Int(rng.next() % UInt64(interesting.count))]
            }
            let tokens = KernelCmdline.tokenize(bytes: bytes)
            for token in tokens {
                #expect(!token.raw.isEmpty || token.unterminatedQuote || token.raw.isEmpty)
            }
            // Only valid UTF-8 round-trips through String; the kernel works on bytes.
            if String(validating: bytes, as: UTF8.self) != nil, !tokens.contains(where: \.unterminatedQuote) {
                let again = KernelCmdline.tokenize(tokens.map(\.raw).joined(separator: " "))
                #expect(again.map(\.raw) == tokens.map(\.raw))
                #expect(again.map(\.key) == tokens.map(\.key))
                #expect(again.map(\.value) == tokens.map(\.value))
            }
        }
    }
}
