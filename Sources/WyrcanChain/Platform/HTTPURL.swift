/// The parts of an http(s) URL that requests and signatures need, without a URL parser:
/// registry and S3 endpoints are plain `scheme://host[:port]/path`.
public enum HTTPURL {
    /// `host[:port]` of `url` (a URL, or a bare `host[:port][/path]`), without the scheme's
    /// default port (curl leaves it out of the Host header as well).
    public static func authority(of url: String) -> String {
        var rest = Substring(url)
        if let scheme = rest.range(of: "://") { rest = rest[scheme.upperBound...] }
        let host = String(rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" })
        let defaultPort = url.hasPrefix("https://") ? ":443" : url.hasPrefix("http://") ? ":80" : nil
        if let defaultPort, host.hasSuffix(defaultPort) { return String(host.dropLast(defaultPort.count)) }
        return host
    }
}
