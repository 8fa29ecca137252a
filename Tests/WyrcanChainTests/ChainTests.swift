import Testing
@testable import WyrcanChain

@Suite struct NestedArgTests {
    @Test func decodeRule() {
        #expect(NestedArg.decode("quiet log-buf-len=1M") == "quiet log-buf-len=1M")
        #expect(NestedArg.decode("wyr.arg='a b'") == "wyr.arg=\"a b\"")
        #expect(NestedArg.decode(#"wyr.arg='wyr.arg=\'a b\''"#) == #"wyr.arg="wyr.arg='a b'""#)
        #expect(NestedArg.decode(#"a\\b"#) == #"a\b"#)
        #expect(NestedArg.decode(#"a\b"#) == #"a\b"#, "a lone backslash stays")
        #expect(NestedArg.decode(#"trailing\"#) == #"trailing\"#)
    }

    @Test func encodeIsTheInverseOfDecode() {
        var rng = SplitMix64(seed: 3)
        let alphabet = ["a", "'", "\"", "\\", " ", "=", "é", "\\'"]
        for _ in 0..<5000 {
            let text = rng.string(from: alphabet, maxLength: 16)
            let encoded = NestedArg.encode(text)
            #expect(!encoded.contains("\""))
            #expect(NestedArg.decode(encoded) == text)
        }
    }

    @Test func parameterQuotesWhenNeeded() {
        #expect(NestedArg.parameter(for: "wyr.img=r/os") == "wyr.arg=wyr.img=r/os")
        #expect(NestedArg.parameter(for: "foo=\"a b\"") == "wyr.arg=\"foo='a b'\"")
    }
}

@Suite struct ChainTests {
    @Test func twoLevelsWithSpacesArriveIntact() throws {
        let first = #"console=ttyS0 wyr.img=reg.local/wyrcan wyr.arg="wyr.img=reg.local/os wyr.arg='quiet log-buf-len=1M' wyr.arg=loglevel=3""#
        let stage1 = try WyrcanArgs(parsing: first)
        let second = try stage1.nextCmdline()
        #expect(second == #"wyr.img=reg.local/os wyr.arg="quiet log-buf-len=1M" wyr.arg=loglevel=3 wyr.depth=1"#)
        let stage2 = try WyrcanArgs(parsing: second)
        #expect(try stage2.nextCmdline() == "quiet log-buf-len=1M loglevel=3")
    }

    @Test func threeLevelsFromTheEncoder() throws {
        let chain = Chain(
            stages: [ChainStage(image: "r.io/wyrcan:1", parameters: ["console=ttyS0"]),
                     ChainStage(image: "r.io/wyrcan:2"), ChainStage(image: "r.io/debian:12")],
            final: ["quiet", #"motd="hello 'world'""#, "x=1"])
        let text = try chain.encode()
        #expect(text == #"console=ttyS0 wyr.img=r.io/wyrcan:1 wyr.arg=wyr.img=r.io/wyrcan:2 wyr.arg=wyr.arg=wyr.img=r.io/debian:12 wyr.arg=wyr.arg=wyr.arg=quiet wyr.arg="wyr.arg='wyr.arg=\'motd=\\\'hello \\\\\\\'world\\\\\\\'\\\'\''" wyr.arg=wyr.arg=wyr.arg=x=1"#)
        #expect(try Chain(decoding: text) == chain)
    }

    @Test func loopIsRefused() throws {
        // An image whose own /boot/wyrcan.cmdline boots itself again.
        let a = try WyrcanArgs(parsing: "wyr.img=r.io/wyrcan")
        #expect(throws: CmdlineError.chainLoop(image: "r.io/wyrcan:latest")) { try a.nextCmdline(imageCmdline: "wyr.img=r.io/wyrcan") }
    }

    @Test func depthIsCapped() throws {
        let a = try WyrcanArgs(parsing: "wyr.img=r.io/w wyr.depth=7 wyr.arg=wyr.img=r.io/x")
        #expect(throws: CmdlineError.chainTooDeep(depth: 9, limit: 8)) { try a.nextCmdline() }
        let deep = Chain(stages: (0..<9).map { ChainStage(image: "r.io/w:\($0)") }, final: [])
        #expect(throws: CmdlineError.chainTooDeep(depth: 9, limit: 8)) { try deep.encode() }
        // An image cmdline that chains forever is stopped by the depth count, stage after stage.
        var cmdline = "wyr.img=r.io/a"
        var stages = 0
        do {
            while true {
                let args = try WyrcanArgs(parsing: cmdline)
                cmdline = try args.nextCmdline(imageCmdline: args.image?.repository == "a" ? "wyr.img=r.io/b" : "wyr.img=r.io/a")
                stages += 1
            }
        } catch {
            #expect(error == .chainTooDeep(depth: 9, limit: 8))
        }
        #expect(stages == 7)
    }

    @Test func nestedErrorsNameTheStage() throws {
        let a = try WyrcanArgs(parsing: "wyr.img=r.io/w wyr.arg=wyr.img=bad!")
        do {
            _ = try a.nextCmdline()
            Issue.record("accepted")
        } catch {
            #expect(error.description.hasPrefix("chain stage 2: wyr.img: invalid image reference \"bad!\""), "\(error)")
        }
    }

    /// For any list of stages, encoding then decoding stage by stage gives the same list.
    @Test func roundTripProperty() throws {
        var rng = SplitMix64(seed: 2026_11_28)
        var checked = 0
        var tooLong = 0
        for _ in 0..<12_000 {
            let stageCount = 1 + Int(rng.next() % 5)
            let stages = (0..<stageCount).map { i in
                ChainStage(
                    image: "reg\(rng.next() % 9).local:5000/stage\(i)/img:v\(rng.next() % 99)",
                    parameters: (0..<Int(rng.next() % 3)).map { _ in randomParameter(&rng, wyrcanFlags: true) })
            }
            let final = (0..<Int(rng.next() % 5)).map { _ in randomParameter(&rng, wyrcanFlags: false) }
            let chain = Chain(stages: stages, final: final)
            let text: String
            do { text = try chain.encode() } catch {
                guard case .cmdlineTooLong = error else { Issue.record("encode failed: \(error)"); continue }
                tooLong += 1
                continue
            }
            let decoded = try Chain(decoding: text)
            #expect(decoded == chain, "cmdline: \(text)")
            checked += 1
        }
        #expect(checked >= 10_000, "only \(checked) cases fit a cmdline (\(tooLong) too long)")
    }

    func randomParameter(_ rng: inout SplitMix64, wyrcanFlags: Bool) -> String {
        if wyrcanFlags && rng.next() % 6 == 0 {
            return rng.pick(["wyr.rescue", "wyr.net.lan.Network.DHCP=yes", "wyr.insecure=reg1.local:5000", "wyrcan.platform=linux/amd64"])
        }
        while true {
            let key = "k" + rng.string(from: Alphabet.keyChars, maxLength: 6)
            let text: String
            switch rng.next() % 4 {
            case 0: text = key
            case 1: text = key + "=" + rng.string(from: Alphabet.bareChars, maxLength: 10)
            case 2: text = key + "=\"" + rng.string(from: Alphabet.valueChars, maxLength: 10) + "\""
            default:
                text = key + "=" + rng.string(from: Alphabet.bareChars, maxLength: 4) + "\""
                    + rng.string(from: Alphabet.valueChars, maxLength: 6) + "\"" + rng.string(from: Alphabet.bareChars, maxLength: 4)
            }
            if KernelCmdline.isSingleParameter(text) { return text }
        }
    }
}
