/// An image reference `[registry[:port]/]path[:tag][@digest]`, normalised the way Docker and
/// the OCI tools do it: no registry means Docker Hub (`docker.io`), a one-part Docker Hub path
/// means `library/NAME`, and neither tag nor digest means `:latest`.
public struct Reference: Sendable, Hashable, CustomStringConvertible {
    /// The registry as named: `host`, `host:port` or `[ipv6]:port`; `docker.io` for Docker Hub.
    public let registry: String
    /// The repository path inside the registry, e.g. `library/debian`.
    public let repository: String
    /// The tag; `latest` when the reference has neither tag nor digest.
    public let tag: String?
    public let digest: Digest?

    public static let dockerHub = "docker.io"
    /// Docker Hub serves the registry API from another host than its name.
    public static let dockerHubAPIHost = "registry-1.docker.io"
    public static let maximumNameLength = 255
    public static let maximumTagLength = 128

    public init(registry: String, repository: String, tag: String?, digest: Digest?) {
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest
    }

    public init(parsing text: String) throws(ReferenceError) {
        func fail(_ reason: String) -> ReferenceError { .invalidReference(text, reason: reason) }
        guard !text.isEmpty else { throw fail("it is empty") }
        guard text.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
            throw fail("only printable ASCII without spaces is allowed")
        }

        var rest = Substring(text)
        var digest: Digest? = nil
        if let at = rest.lastIndex(of: "@") {
            digest = try Digest(parsing: String(rest[rest.index(after: at)...]))
            rest = rest[..<at]
        }
        var tag: String? = nil
        let lastSlash = rest.lastIndex(of: "/")
        if let colon = rest.lastIndex(of: ":"), lastSlash.map({ colon > $0 }) ?? true {
            let candidate = String(rest[rest.index(after: colon)...])
            // "host:port" with no path is not a tag: leave it for the name check to reject.
            if !(lastSlash == nil && rest.first == "[") {
                tag = candidate
                rest = rest[..<colon]
            }
        }
        if let tag {
            guard Self.isValidTag(tag) else {
                throw fail(tag.isEmpty ? "the tag after ':' is empty"
                    : "tag \(Message.quoted(tag)) must be 1–128 of letters, digits, '_', '.', '-' and not start with '.' or '-'")
            }
        }

        var registry = Self.dockerHub
        var path = String(rest)
        if let slash = rest.firstIndex(of: "/") {
            let first = String(rest[..<slash])
            if first.contains(".") || first.contains(":") || first == "localhost" || first.first == "["
                || first.lowercased() != first
            {
                registry = first
                path = String(rest[rest.index(after: slash)...])
            }
        }
        if registry == "index.docker.io" { registry = Self.dockerHub }
        if registry != Self.dockerHub {
            if let reason = Self.registryProblem(registry) { throw fail(reason) }
        }
        guard !path.isEmpty else { throw fail("the repository path is empty") }
        if path.lowercased() != path { throw fail("repository name \(Message.quoted(path)) must be lowercase") }
        for component in path.split(separator: "/", omittingEmptySubsequences: false) {
            guard Self.isValidPathComponent(component) else {
                throw fail("path component \(Message.quoted(component)) must be lowercase letters and digits, separated by '.', '_', '__' or dashes")
            }
        }
        if registry == Self.dockerHub && !path.contains("/") { path = "library/" + path }
        let nameLength = registry.utf8.count + 1 + path.utf8.count
        guard nameLength <= Self.maximumNameLength else {
            throw fail("the name is \(nameLength) characters; at most \(Self.maximumNameLength) are allowed")
        }

        self.registry = registry
        self.repository = path
        self.digest = digest
        self.tag = tag ?? (digest == nil ? "latest" : nil)
    }

    /// The host (and port) to contact for the registry API.
    public var apiHost: String { registry == Self.dockerHub ? Self.dockerHubAPIHost : registry }

    /// The tag or digest to ask the registry for; the digest wins when both are given.
    public var manifestReference: String { digest?.description ?? tag ?? "latest" }

    /// The canonical form: `registry/repository[:tag][@digest]`.
    public var description: String {
        var s = "\(registry)/\(repository)"
        if let tag { s += ":\(tag)" }
        if let digest { s += "@\(digest)" }
        return s
    }

    // MARK: - Grammar pieces (distribution/reference)

    static func isValidTag(_ tag: String) -> Bool {
        let u = Array(tag.utf8)
        guard !u.isEmpty, u.count <= maximumTagLength else { return false }
        func word(_ c: UInt8) -> Bool {
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == UInt8(ascii: "_")
        }
        guard word(u[0]) else { return false }
        return u.allSatisfy { word($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }

    /// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
    static func isValidPathComponent(_ component: Substring) -> Bool {
        let u = Array(component.utf8)
        func alnum(_ c: UInt8) -> Bool { (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7A) }
        guard let first = u.first, let last = u.last, alnum(first), alnum(last) else { return false }
        var i = 0
        while i < u.count {
            if alnum(u[i]) { i += 1; continue }
            var j = i
            while j < u.count && !alnum(u[j]) { j += 1 }
            let sep = u[i..<j]
            let ok = sep.elementsEqual([UInt8(ascii: ".")]) || sep.elementsEqual([UInt8(ascii: "_")])
                || sep.elementsEqual([UInt8(ascii: "_"), UInt8(ascii: "_")]) || sep.allSatisfy { $0 == UInt8(ascii: "-") }
            if !ok { return false }
            i = j
        }
        return true
    }

    /// nil when `host[:port]` is a valid registry name, else why not.
    static func registryProblem(_ registry: String) -> String? {
        var host = Substring(registry)
        var port: Substring? = nil
        if host.first == "[" {
            guard let close = host.firstIndex(of: "]") else { return "IPv6 registry address \(Message.quoted(registry)) lacks ']'" }
            let inner = host[host.index(after: host.startIndex)..<close]
            guard !inner.isEmpty, inner.contains(":"),
                  inner.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else {
                return "\(Message.quoted(inner)) is not an IPv6 address"
            }
            let after = host[host.index(after: close)...]
            if !after.isEmpty {
                guard after.first == ":" else { return "unexpected \(Message.quoted(after)) after the IPv6 address" }
                port = after.dropFirst()
            }
            host = host[...close]
        } else {
            if let colon = host.firstIndex(of: ":") {
                port = host[host.index(after: colon)...]
                host = host[..<colon]
            }
            for label in host.split(separator: ".", omittingEmptySubsequences: false) {
                let ok = !label.isEmpty && label.utf8.count <= 63
                    && label.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "-" }
                    && label.first != "-" && label.last != "-"
                if !ok { return "registry host \(Message.quoted(host)) is not a valid host name" }
            }
        }
        if let port {
            guard !port.isEmpty, port.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(port), n >= 1, n <= 65535 else {
                return "registry port \(Message.quoted(port)) must be a number from 1 to 65535"
            }
        }
        return nil
    }
}
