/// Why a Wyrcan cmdline (or a piece of one) cannot be used. Each message is one line that names
/// the offending parameter and says what is wrong with it.
public enum CmdlineError: Error, Equatable, Sendable, CustomStringConvertible {
    case unterminatedQuote(parameter: String)
    case missingValue(parameter: String, expected: String)
    case invalidValue(parameter: String, value: String, reason: String)
    case invalidNetworkKey(parameter: String, reason: String)
    case invalidImage(parameter: String, reason: String)
    case unbalancedNestedArg(parameter: String, text: String)
    case invalidUTF8(parameter: String)
    case nestedInvalidUTF8(parameter: String)
    case imageCmdlineUnbalanced(text: String)
    case cmdlineTooLong(length: Int, limit: Int, stage: Int)
    case chainTooDeep(depth: Int, limit: Int)
    case chainLoop(image: String)
    case notRepresentable(what: String, reason: String)
    case undefinedS3Alias(parameter: String, alias: String)
    case duplicateVolume(name: String)
    indirect case inStage(Int, CmdlineError)

    /// One line: values from the cmdline are shown escaped and shortened (`Message`).
    public var description: String { Message.oneLine(text) }

    private var text: String {
        switch self {
        case .unterminatedQuote(let p):
            return "\(p): unbalanced double quote; the value would run to the end of the cmdline"
        case .missingValue(let p, let expected):
            return "\(p): missing value; expected \(p)=\(expected)"
        case .invalidValue(let p, let v, let reason):
            return "\(p)=\(Message.quoted(v, quotes: false)): \(reason)"
        case .invalidNetworkKey(let p, let reason):
            return "\(p): \(reason); expected wyr.net.[KIND.]FILE.SECTION[@N].KEY=VALUE"
        case .invalidImage(let p, let reason):
            return "\(p): \(reason)"
        case .unbalancedNestedArg(let p, let text):
            return "\(p): becomes \(Message.quoted(text)) for the next kernel, which has an unbalanced double quote"
        case .invalidUTF8(let p):
            return "\(p): not valid UTF-8 once the kernel splits it (byte 0xA0, part of characters such as 'à', separates parameters); put the value in double quotes"
        case .nestedInvalidUTF8(let p):
            return "\(p): the next kernel would split this text inside a UTF-8 character (byte 0xA0, part of characters such as 'à'); quote it for the next stage with single quotes, e.g. wyr.arg=\"x='…'\""
        case .imageCmdlineUnbalanced(let text):
            return "the image's /boot/wyrcan.cmdline has an unbalanced double quote: \(Message.quoted(text))"
        case .cmdlineTooLong(let length, let limit, let stage):
            return "the cmdline of chain stage \(stage) is \(length) bytes; the kernel keeps at most \(limit)"
        case .chainTooDeep(let depth, let limit):
            return "wyr.img: a chain of \(depth) Wyrcan stages exceeds the limit of \(limit)"
        case .chainLoop(let image):
            return "wyr.img=\(image): the next stage would boot the same image with the same arguments again (chain loop)"
        case .notRepresentable(let what, let reason):
            return "\(what): cannot be put on a kernel cmdline: \(reason)"
        case .undefinedS3Alias(let p, let alias):
            return "\(p): mirror alias \(Message.quoted(alias)) is not defined; add wyr.s3=\(alias),URL,ACCESS_KEY,SECRET_KEY"
        case .duplicateVolume(let name):
            return "wyr.volume=\(name): volume defined twice"
        case .inStage(let stage, let error):
            return "chain stage \(stage): \(error.description)"
        }
    }
}
