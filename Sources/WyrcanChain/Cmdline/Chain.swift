/// Building the next stage's cmdline, and chains of Wyrcan stages (self-upgrade).
extension WyrcanArgs {
    /// The next kernel's cmdline: the image's `/boot/wyrcan.cmdline`, then each `wyr.arg` value
    /// (nesting-decoded, see `NestedArg`) inserted as cmdline text, in order. When that cmdline
    /// names an image again (the next stage is Wyrcan itself), `wyr.depth=N` is added so the
    /// chain's depth is known at every stage; a chain that would boot the same image with the same
    /// arguments again, or that grows past `maximumChainDepth`, is refused. `verifiedWith`: the keys
    /// this stage checked the image's signature with; a next Wyrcan must check its own image with
    /// them too (`wyr.verify`), so a signature requirement cannot end with a signed Wyrcan that
    /// boots anything.
    public func nextCmdline(imageCmdline: String = "", verifiedWith keys: [String] = []) throws(CmdlineError) -> String {
        var tokens: [KernelParameter] = []
        let imageTokens = KernelCmdline.tokenize(imageCmdline)
        if imageTokens.contains(where: \.unterminatedQuote) {
            throw .imageCmdlineUnbalanced(text: imageCmdline)
        }
        tokens += imageTokens
        for arg in args {
            let text = NestedArg.decode(arg)
            let argTokens = KernelCmdline.tokenize(text)
            if argTokens.contains(where: \.unterminatedQuote) {
                throw .unbalancedNestedArg(parameter: "wyr.arg=\(arg)", text: text)
            }
            if argTokens.contains(where: { !$0.isValidUTF8 }) {
                throw .nestedInvalidUTF8(parameter: "wyr.arg=\(arg)")
            }
            tokens += argTokens
        }

        let end = tokens.firstIndex { $0.value == nil && $0.key == "--" } ?? tokens.count
        let nextIsWyrcan = tokens[..<end].contains { Self.wyrcanKey($0.key) == "img" }
        var raw = tokens.map(\.raw)
        if nextIsWyrcan {
            let nextDepth = depth + 1
            guard nextDepth < Self.maximumChainDepth else {
                throw .chainTooDeep(depth: nextDepth + 1, limit: Self.maximumChainDepth)
            }
            let next: WyrcanArgs
            do { next = try WyrcanArgs(parameters: Array(tokens[..<end])) } catch {
                throw .inStage(nextDepth + 1, error)
            }
            if next.image == image && next.args == args {
                throw .chainLoop(image: image?.description ?? "")
            }
            // Replace any depth the text carried: only Wyrcan counts stages.
            raw = zip(tokens.indices, raw).compactMap { i, r in
                i < end && Self.wyrcanKey(tokens[i].key) == "depth" ? nil : r
            }
            let insertAt = raw.firstIndex(of: "--") ?? raw.count
            raw.insert("wyr.depth=\(nextDepth)", at: insertAt)
            if !keys.isEmpty { raw.insert("wyr.verify=\(keys.joined(separator: ","))", at: insertAt) }
        }
        let cmdline = raw.joined(separator: " ")
        guard cmdline.utf8.count <= KernelCmdline.maximumLength else {
            throw .cmdlineTooLong(length: cmdline.utf8.count, limit: KernelCmdline.maximumLength, stage: depth + 2)
        }
        return cmdline
    }
}

/// One Wyrcan stage of a chain: the image it boots and its other parameters (raw cmdline text,
/// without `wyr.img`, `wyr.arg` and `wyr.depth`, which the chain itself carries).
public struct ChainStage: Sendable, Equatable, Codable {
    public var image: String
    public var parameters: [String]

    public init(image: String, parameters: [String] = []) {
        self.image = image
        self.parameters = parameters
    }
}

/// A whole chain: Wyrcan stages in boot order, then the cmdline parameters of the final system.
///
/// `encode()` writes the first stage's cmdline; each later stage travels inside `wyr.arg` values,
/// one per parameter, nested with `NestedArg`. `init(decoding:)` replays what each stage does
/// (assuming the images add no `/boot/wyrcan.cmdline` of their own).
public struct Chain: Sendable, Equatable, Codable {
    public var stages: [ChainStage]
    public var final: [String]

    public init(stages: [ChainStage], final: [String]) {
        self.stages = stages
        self.final = final
    }

    static let chainKeys: Set<String> = ["img", "arg", "depth"]

    /// The first stage's cmdline.
    public func encode() throws(CmdlineError) -> String {
        guard !stages.isEmpty else {
            throw .notRepresentable(what: "chain", reason: "it has no Wyrcan stage")
        }
        guard stages.count <= WyrcanArgs.maximumChainDepth else {
            throw .chainTooDeep(depth: stages.count, limit: WyrcanArgs.maximumChainDepth)
        }
        for parameter in final where !KernelCmdline.isSingleParameter(parameter) {
            throw .notRepresentable(what: parameter, reason: "it is not a single kernel parameter (balanced quotes, no bare whitespace)")
        }
        var inner = final
        for (index, stage) in stages.enumerated().reversed() {
            do { _ = try Reference(parsing: stage.image) } catch {
                throw .invalidImage(parameter: "wyr.img=\(stage.image)", reason: error.description)
            }
            for parameter in stage.parameters {
                guard KernelCmdline.isSingleParameter(parameter) else {
                    throw .notRepresentable(what: parameter, reason: "it is not a single kernel parameter (balanced quotes, no bare whitespace)")
                }
                if let key = WyrcanArgs.wyrcanKey(KernelCmdline.tokenize(parameter)[0].key), Self.chainKeys.contains(key) {
                    throw .notRepresentable(what: parameter, reason: "the chain sets wyr.img, wyr.arg and wyr.depth itself")
                }
            }
            inner = stage.parameters + ["wyr.img=\(stage.image)"] + inner.map { NestedArg.parameter(for: $0) }
            // Leave room for the wyr.depth=N that Wyrcan adds when it chains.
            let length = inner.joined(separator: " ").utf8.count + (index > 0 ? " wyr.depth=N".utf8.count : 0)
            guard length <= KernelCmdline.maximumLength else {
                throw .cmdlineTooLong(length: length, limit: KernelCmdline.maximumLength, stage: index + 1)
            }
        }
        return inner.joined(separator: " ")
    }

    /// Replays the chain that `cmdline` starts, stage by stage.
    public init(decoding cmdline: String) throws(CmdlineError) {
        var stages: [ChainStage] = []
        var text = cmdline
        while true {
            let tokens = KernelCmdline.tokenize(text)
            let args: WyrcanArgs
            do { args = try WyrcanArgs(parameters: tokens) } catch {
                throw stages.isEmpty ? error : .inStage(stages.count + 1, error)
            }
            guard let image = args.image else {
                self.init(stages: stages, final: tokens.map(\.raw))
                return
            }
            let end = tokens.firstIndex { $0.value == nil && $0.key == "--" } ?? tokens.count
            let parameters = tokens.enumerated().compactMap { i, t -> String? in
                if i < end, let key = WyrcanArgs.wyrcanKey(t.key), Self.chainKeys.contains(key) { return nil }
                return t.raw
            }
            stages.append(ChainStage(image: image.description, parameters: parameters))
            do { text = try args.nextCmdline() } catch {
                throw stages.count == 1 ? error : .inStage(stages.count, error)
            }
        }
    }
}
