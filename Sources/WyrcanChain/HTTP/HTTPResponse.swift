#if canImport(Glibc)
import Glibc
#endif
import CCurl

/// An HTTP response: status, headers and, unless a receiver took it, the body.
public struct HTTPResponse: Sendable {
    public var status: Int
    /// Header names lowercased; repeated headers keep every value in order.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// The body receiver asked to stop: the transfer ended there, on the caller's own account.
    public var stoppedByReceiver = false

    public init(status: Int, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public var isSuccess: Bool { (200..<300).contains(status) }

    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.last { $0.name == lower }?.value
    }

    /// Takes one raw header line: a status line starts a new response (after a redirect or a
    /// `100 Continue`), `Name: value` adds a header, anything else is ignored.
    mutating func take(headerLine line: String) {
        let trimmed = line.trimming(" \r\n\t")
        if trimmed.hasPrefix("HTTP/") {
            headers.removeAll()
            let parts = trimmed.split(separator: " ")
            status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
            return
        }
        guard let colon = trimmed.firstIndex(of: ":") else { return }
        let name = trimmed[..<colon].lowercased()
        let value = trimmed[trimmed.index(after: colon)...].trimming(" \t")
        headers.append((name, value))
    }

    /// `Retry-After` in seconds: a number of seconds or an HTTP date (RFC 9110 §10.2.3), the
    /// latter counted from the response's own `Date` when it has one (a machine that just
    /// booted may not know the time yet).
    public var retryAfter: Double? {
        guard let value = header("retry-after")?.trimming(" "), !value.isEmpty else { return nil }
        if let seconds = Double(value) { return max(0, seconds) }
        let date = curl_getdate(value, nil)
        guard date >= 0 else { return nil }
        let served = header("date").map { curl_getdate($0, nil) } ?? -1
        return Double(max(0, date - (served >= 0 ? served : time(nil))))
    }

    /// The first line of the body, shortened, for an error message.
    public var bodySummary: String {
        Message.quoted(String(decoding: body.prefix(400), as: UTF8.self).split(whereSeparator: \.isNewline).first.map(String.init) ?? "", limit: 200, quotes: false)
    }
}

extension StringProtocol {
    func trimming(_ set: String) -> String {
        let chars = Set(set)
        var s = Substring(self)
        while let f = s.first, chars.contains(f) { s.removeFirst() }
        while let l = s.last, chars.contains(l) { s.removeLast() }
        return String(s)
    }
}
