/// A volume synced with S3-compatible storage, in the style of boot2container:
/// `wyr.volume=NAME[,mirror=ALIAS/BUCKET[/PREFIX]][,pull_on=EVENT…][,push_on=EVENT…][,overwrite]
/// [,remove][,exclude=GLOB…][,path=/MOUNT/POINT][,expiration=never|shutdown]`.
public struct VolumeSpec: Sendable, Equatable, Codable {
    /// When Wyrcan pulls the volume from its mirror.
    public enum PullEvent: String, Sendable, Codable, CaseIterable {
        /// Before kexec, into the next system.
        case boot
    }

    /// When the volume's changes are pushed to its mirror.
    public enum PushEvent: String, Sendable, Codable, CaseIterable {
        /// When files change (inotify, debounced), by the agent Wyrcan injects into the next system.
        case changes
        /// At shutdown of the next system.
        case shutdown
        /// Every few minutes, by the injected agent.
        case periodic
        /// At the next boot, before pulling: for volumes on a local cache disk.
        case boot
    }

    public enum Expiration: String, Sendable, Codable {
        case never, shutdown
    }

    public struct Mirror: Sendable, Equatable, Codable, CustomStringConvertible {
        public var alias: String
        public var bucket: String
        public var prefix: String
        public var description: String { prefix.isEmpty ? "\(alias)/\(bucket)" : "\(alias)/\(bucket)/\(prefix)" }
    }

    public var name: String
    public var mirror: Mirror?
    public var pullOn: [PullEvent] = []
    public var pushOn: [PushEvent] = []
    public var overwrite = false
    public var remove = false
    public var exclude: [String] = []
    public var path: String
    public var expiration: Expiration = .never

    public static func defaultPath(for name: String) -> String { "/var/lib/wyrcan/volumes/\(name)" }

    /// Parses a `wyr.volume` (or boot2container `b2c.volume`) value. `parameter` names it in errors.
    public init(parsing text: String, parameter: String = "wyr.volume") throws(CmdlineError) {
        let fields = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        let name = fields[0]
        func bad(_ value: String, _ reason: String) -> CmdlineError {
            .invalidValue(parameter: parameter, value: text, reason: reason)
        }
        guard Self.isName(name) else {
            throw bad(name, "volume name \(Message.quoted(name)) must be letters, digits, '.', '-' or '_'")
        }
        self.name = name
        self.path = Self.defaultPath(for: name)
        for field in fields.dropFirst() {
            let (key, value): (String, String?) = {
                guard let eq = field.firstIndex(of: "=") else { return (field, nil) }
                return (String(field[..<eq]), String(field[field.index(after: eq)...]))
            }()
            switch (key, value) {
            case ("mirror", let v?):
                let parts = v.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
                guard parts.count >= 2, !parts[0].isEmpty, S3Alias.isAlias(parts[0]), Self.isBucket(parts[1]) else {
                    throw bad(v, "mirror must be ALIAS/BUCKET[/PREFIX] with a bucket of 3–63 lowercase letters, digits, '.' or '-'")
                }
                var prefix = parts.count == 3 ? parts[2] : ""
                while prefix.hasSuffix("/") { prefix.removeLast() }
                mirror = Mirror(alias: parts[0], bucket: parts[1], prefix: prefix)
            case ("pull_on", let v?), ("pull_from", let v?):
                guard let e = Self.pullEvent(v) else {
                    throw bad(v, "pull_on \(Message.quoted(v)) is not one of: boot (boot2container: pipeline_start, container_start)")
                }
                if !pullOn.contains(e) { pullOn.append(e) }
            case ("push_on", let v?), ("push_to", let v?):
                guard let e = Self.pushEvent(v) else {
                    throw bad(v, "push_on \(Message.quoted(v)) is not one of: changes, shutdown, periodic, boot (boot2container: container_end, pipeline_end)")
                }
                if !pushOn.contains(e) { pushOn.append(e) }
            case ("overwrite", nil): overwrite = true
            case ("remove", nil): remove = true
            case ("exclude", let v?):
                guard !v.isEmpty else { throw bad(v, "exclude needs a glob, e.g. exclude=*.tmp") }
                exclude.append(v)
            case ("path", let v?):
                guard v.hasPrefix("/"), !v.split(separator: "/").contains(".."), v != "/" else {
                    throw bad(v, "path \(Message.quoted(v)) must be an absolute path below / without '..'")
                }
                path = v
            case ("expiration", let v?):
                switch v {
                case "never": expiration = .never
                case "shutdown", "pipeline_end": expiration = .shutdown
                default: throw bad(v, "expiration \(Message.quoted(v)) is not one of: never, shutdown")
                }
            default:
                throw bad(field, "unknown volume option \(Message.quoted(field))")
            }
        }
        if (!pullOn.isEmpty || !pushOn.isEmpty) && mirror == nil {
            throw bad(text, "pull_on/push_on need mirror=ALIAS/BUCKET")
        }
    }

    /// The `wyr.volume` value that parses back to this spec.
    public var rendered: String {
        var fields = [name]
        if let mirror { fields.append("mirror=\(mirror)") }
        fields += pullOn.map { "pull_on=\($0.rawValue)" }
        fields += pushOn.map { "push_on=\($0.rawValue)" }
        if overwrite { fields.append("overwrite") }
        if remove { fields.append("remove") }
        fields += exclude.map { "exclude=\($0)" }
        if path != Self.defaultPath(for: name) { fields.append("path=\(path)") }
        if expiration != .never { fields.append("expiration=\(expiration.rawValue)") }
        return fields.joined(separator: ",")
    }

    static func pullEvent(_ v: String) -> PullEvent? {
        switch v {
        case "boot", "pipeline_start", "container_start": return .boot
        default: return nil
        }
    }

    static func pushEvent(_ v: String) -> PushEvent? {
        switch v {
        case "changes": return .changes
        case "shutdown", "container_end", "pipeline_end": return .shutdown
        case "periodic": return .periodic
        case "boot": return .boot
        default: return nil
        }
    }

    static func isName(_ s: String) -> Bool {
        !s.isEmpty && s.count <= 64 && s.first != "." && s.unicodeScalars.allSatisfy {
            $0.isASCIILetter || $0.isASCIIDigit || $0 == "-" || $0 == "_" || $0 == "."
        }
    }

    static func isBucket(_ s: String) -> Bool {
        (3...63).contains(s.utf8.count) && s.unicodeScalars.allSatisfy {
            ($0.value >= 0x61 && $0.value <= 0x7A) || $0.isASCIIDigit || $0 == "-" || $0 == "."
        }
    }
}

/// An S3 endpoint with credentials: `wyr.s3=ALIAS,URL,ACCESS_KEY,SECRET_KEY`
/// (boot2container: `b2c.minio=ALIAS,URL,ACCESS_KEY,SECRET_KEY`).
public struct S3Alias: Sendable, Equatable, Codable {
    public var alias: String
    public var url: String
    public var accessKey: String
    public var secretKey: String

    public init(alias: String, url: String, accessKey: String, secretKey: String) {
        self.alias = alias
        self.url = url
        self.accessKey = accessKey
        self.secretKey = secretKey
    }

    public init(parsing text: String, parameter: String = "wyr.s3") throws(CmdlineError) {
        let parts = text.split(separator: ",", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
        func bad(_ reason: String) -> CmdlineError {
            // Never echo the secret key into an error message.
            .invalidValue(parameter: parameter, value: parts.first.map { "\($0),…" } ?? "…", reason: reason)
        }
        guard parts.count == 4 else { throw bad("expected ALIAS,URL,ACCESS_KEY,SECRET_KEY") }
        guard Self.isAlias(parts[0]) else { throw bad("alias \(Message.quoted(parts[0])) must be letters, digits, '-' or '_'") }
        let url = parts[1]
        guard url.hasPrefix("http://") || url.hasPrefix("https://"), url.split(separator: "/").count >= 2 else {
            throw bad("URL \(Message.quoted(url)) must start with http:// or https://")
        }
        self.init(alias: parts[0], url: url, accessKey: parts[2], secretKey: parts[3])
    }

    /// The `wyr.s3` value (secret included: only for files Wyrcan writes with mode 0600).
    public var rendered: String { "\(alias),\(url),\(accessKey),\(secretKey)" }

    static func isAlias(_ s: String) -> Bool {
        !s.isEmpty && s.unicodeScalars.allSatisfy { $0.isASCIILetter || $0.isASCIIDigit || $0 == "-" || $0 == "_" }
    }
}
