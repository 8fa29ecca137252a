/// Why an image reference or digest is not valid.
public enum ReferenceError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidReference(String, reason: String)
    case invalidDigest(String, reason: String)
    case invalidPlatform(String, reason: String)

    public var reason: String {
        switch self {
        case .invalidReference(_, let r), .invalidDigest(_, let r), .invalidPlatform(_, let r): return r
        }
    }

    /// One line, the value escaped and shortened.
    public var description: String {
        switch self {
        case .invalidReference(let s, let r): return "invalid image reference \(Message.quoted(s)): \(Message.oneLine(r))"
        case .invalidDigest(let s, let r): return "invalid digest \(Message.quoted(s)): \(Message.oneLine(r))"
        case .invalidPlatform(let s, let r): return "invalid platform \(Message.quoted(s)): \(Message.oneLine(r))"
        }
    }
}
