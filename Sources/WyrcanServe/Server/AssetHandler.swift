import Foundation
import WyrcanChain
import WyrcanFleet
import WyrcanHTTP

/// Serves files below the assets directory: Content-Length, ETag, Last-Modified,
/// If-None-Match / If-Modified-Since, one `Range`, HEAD; never a path outside the directory.
struct AssetHandler: Sendable {
    let root: String

    init(root: String) {
        // Resolve once so symlink checks compare real paths.
        self.root = URL(fileURLWithPath: root).resolvingSymlinksInPath().path
    }

    func respond(_ request: HTTPServerRequest, relative: String) -> HTTPServerResponse {
        guard request.method == "GET" || request.method == "HEAD" else {
            return HTTPServerResponse(status: 405, headers: [("Allow", "GET, HEAD")], body: .bytes(Array("method not allowed\n".utf8)))
        }
        let parts = relative.split(separator: "/", omittingEmptySubsequences: true)
        guard !parts.isEmpty, !parts.contains(where: { $0 == ".." || $0 == "." }), !relative.contains("\0") else {
            return .text(404, "no such asset\n")
        }
        let candidate = root + "/" + parts.joined(separator: "/")
        let real = URL(fileURLWithPath: candidate).resolvingSymlinksInPath().path
        guard real.hasPrefix(root + "/") else { return .text(404, "no such asset\n") }
        var st = stat()
        guard stat(real, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return .text(404, "no such asset\n") }
        let size = Int64(st.st_size)
        let mtimeNs = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        let etag = "\"\(String(size, radix: 16))-\(String(mtimeNs, radix: 16))\""
        let lastModified = Self.httpDate(Date(timeIntervalSince1970: TimeInterval(st.st_mtim.tv_sec)))
        var headers: [(name: String, value: String)] = [
            ("ETag", etag), ("Last-Modified", lastModified), ("Accept-Ranges", "bytes"),
            ("Content-Type", Self.contentType(real)), ("Cache-Control", "no-cache"),
        ]
        if let inm = request.header("If-None-Match"), inm.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == etag || $0.trimmingCharacters(in: .whitespaces) == "*" }) {
            return HTTPServerResponse(status: 304, headers: headers)
        }
        if request.header("If-None-Match") == nil, let ims = request.header("If-Modified-Since"), ims == lastModified {
            return HTTPServerResponse(status: 304, headers: headers)
        }
        var offset: Int64 = 0
        var length = size
        var status = 200
        if let range = request.header("Range"), request.header("If-Range").map({ $0 == etag || $0 == lastModified }) ?? true {
            switch Self.parseRange(range, size: size) {
            case .none: break
            case .unsatisfiable:
                headers.append(("Content-Range", "bytes */\(size)"))
                return HTTPServerResponse(status: 416, headers: headers)
            case .range(let a, let b):
                offset = a
                length = b - a + 1
                status = 206
                headers.append(("Content-Range", "bytes \(a)-\(b)/\(size)"))
            }
        }
        let fd = open(real, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .text(404, "no such asset\n") }
        // For HEAD, libmicrohttpd sends the headers (with this Content-Length) and no body.
        return HTTPServerResponse(status: status, headers: headers, body: .file(descriptor: fd, offset: offset, length: length))
    }

    /// UEFI HTTP boot wants an EFI application (`application/efi`); everything else is bytes.
    static func contentType(_ path: String) -> String { path.hasSuffix(".efi") ? "application/efi" : "application/octet-stream" }

    enum RangeResult: Equatable { case none, unsatisfiable, range(Int64, Int64) }

    /// One `bytes=a-b`, `bytes=a-` or `bytes=-n`; several ranges are answered with the whole file.
    static func parseRange(_ header: String, size: Int64) -> RangeResult {
        guard header.hasPrefix("bytes="), !header.contains(",") else { return .none }
        let spec = header.dropFirst(6).trimmingCharacters(in: .whitespaces)
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return .none }
        if parts[0].isEmpty {
            guard let n = Int64(parts[1]), n > 0 else { return .unsatisfiable }
            return size == 0 ? .unsatisfiable : .range(max(0, size - n), size - 1)
        }
        guard let a = Int64(parts[0]) else { return .none }
        guard a < size else { return .unsatisfiable }
        if parts[1].isEmpty { return .range(a, size - 1) }
        guard let b = Int64(parts[1]), b >= a else { return .none }
        return .range(a, min(b, size - 1))
    }

    static func httpDate(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return f.string(from: date)
    }
}
