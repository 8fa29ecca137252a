#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One object of a listing.
public struct S3Object: Sendable, Equatable, Codable {
    public var key: String
    public var size: Int64
    /// Without quotes; the MD5 hex of the content for single-part uploads, "HEX-N" for multipart.
    public var etag: String
    /// Unix seconds.
    public var lastModified: Int64
}

extension S3Client {
    /// Objects above this size are uploaded in parts of this size (bounded memory per transfer).
    public static let partSize = 16 << 20

    /// Every object under `prefix` (ListObjectsV2, following continuation tokens).
    public func list(bucket: String, prefix: String) throws(S3Error) -> [S3Object] {
        var out: [S3Object] = []
        var token: String? = nil
        repeat {
            var query = [("list-type", "2"), ("max-keys", "1000")]
            if !prefix.isEmpty { query.append(("prefix", prefix)) }
            if let token { query.append(("continuation-token", token)) }
            let reply = try send("GET", bucket: bucket, query: query, operation: "list s3://\(bucket)/\(prefix)")
            let xml = String(decoding: reply.body, as: UTF8.self)
            for entry in S3XML.elements("Contents", in: xml) {
                guard let key = S3XML.value("Key", in: entry) else { continue }
                out.append(S3Object(
                    key: key,
                    size: Int64(S3XML.value("Size", in: entry) ?? "") ?? 0,
                    etag: Self.unquote(S3XML.value("ETag", in: entry) ?? ""),
                    lastModified: S3Time.parse(S3XML.value("LastModified", in: entry) ?? "") ?? 0))
            }
            guard S3XML.value("IsTruncated", in: xml) == "true" else { break }
            // A partial listing must not pass for a whole one (a pull with `remove` would act on it).
            guard let next = S3XML.value("NextContinuationToken", in: xml), !next.isEmpty else {
                throw .integrity(operation: "list s3://\(bucket)/\(prefix)", reason: "the listing is truncated but gives no continuation token (the server does not speak ListObjectsV2)")
            }
            token = next
        } while token != nil
        return out
    }

    /// Downloads an object to `path` through `path`'s sibling temporary file, renamed into place
    /// only once the size and (for single-part objects) the MD5 ETag match.
    public func get(_ object: S3Object, bucket: String, to path: String, mode: mode_t = 0o644) throws(S3Error) {
        let temporary = Self.temporaryPath(for: path)
        let operation = "get s3://\(bucket)/\(object.key)"
        final class State { var file: FileHandleFD? = nil; var md5: Digester? = nil; var bytes: Int64 = 0 }
        let state = State()
        let sink = BodySink(
            begin: { () throws(S3Error) in
                do throws(FileError) { state.file = try FileHandleFD.create(temporary, mode: mode) } catch { throw .file(error) }
                do throws(CryptoError) { state.md5 = try Digester(.md5) } catch { throw .crypto(error) }
                state.bytes = 0
            },
            write: { (chunk) throws(S3Error) in
                state.md5?.update(chunk)
                state.bytes += Int64(chunk.count)
                do throws(FileError) { try state.file?.write(chunk) } catch { throw .file(error) }
            },
            finish: { () throws(S3Error) in
                guard state.bytes == object.size else {
                    throw .integrity(operation: operation, reason: "got \(state.bytes) bytes, the listing said \(object.size)")
                }
                let md5 = state.md5?.finalize().hexString ?? ""
                if Self.isPlainMD5(object.etag), md5 != object.etag.lowercased() {
                    throw .integrity(operation: operation, reason: "content MD5 \(md5) differs from its ETag \(object.etag)")
                }
            })
        do throws(S3Error) {
            try send("GET", bucket: bucket, key: object.key, operation: operation, sink: sink)
            state.file = nil
            do throws(FileError) { try FileSystem.rename(temporary, path) } catch { throw .file(error) }
        } catch {
            state.file = nil
            FileSystem.remove(temporary)
            throw error
        }
    }

    /// Uploads a file (multipart above `partSize`); returns the object's ETag after checking it.
    @discardableResult
    public func put(file path: String, bucket: String, key: String) throws(S3Error) -> String {
        let input: FileHandleFD
        do throws(FileError) { input = try FileHandleFD.read(path) } catch { throw .file(error) }
        var st = stat()
        guard fstat(input.fd, &st) == 0 else { throw .file(FileError.last("stat", path)) }
        let size = Int64(st.st_size)
        if size <= Int64(Self.partSize) {
            let body = try Self.read(input, offset: 0, count: Int(size))
            return try putPart(body, bucket: bucket, key: key, query: [], operation: "put s3://\(bucket)/\(key)")
        }
        return try putMultipart(input, size: size, bucket: bucket, key: key)
    }

    public func delete(bucket: String, key: String) throws(S3Error) {
        try send("DELETE", bucket: bucket, key: key, operation: "delete s3://\(bucket)/\(key)")
    }

    /// PUTs one body with Content-MD5 (the server rejects a corrupted body) and checks the ETag.
    private func putPart(_ body: [UInt8], bucket: String, key: String, query: [(String, String)], operation: String) throws(S3Error) -> String {
        let md5: [UInt8]
        do throws(CryptoError) { md5 = try Digester.hash(.md5, body) } catch { throw .crypto(error) }
        let reply = try send("PUT", bucket: bucket, key: key, query: query,
                             headers: [("Content-MD5", Data(md5).base64EncodedString())], body: body, operation: operation)
        let etag = Self.unquote(reply.header("etag") ?? "")
        if Self.isPlainMD5(etag), etag.lowercased() != md5.hexString {
            throw .integrity(operation: operation, reason: "the server stored MD5 \(etag), the file has \(md5.hexString)")
        }
        return etag.isEmpty ? md5.hexString : etag
    }

    private func putMultipart(_ input: FileHandleFD, size: Int64, bucket: String, key: String) throws(S3Error) -> String {
        let operation = "multipart put s3://\(bucket)/\(key)"
        abandonStaleUploads(bucket: bucket, key: key)
        let created = try send("POST", bucket: bucket, key: key, query: [("uploads", "")], body: [], operation: operation)
        guard let uploadID = S3XML.value("UploadId", in: String(decoding: created.body, as: UTF8.self)) else {
            throw .integrity(operation: operation, reason: "the server returned no UploadId")
        }
        do throws(S3Error) {
            var etags: [String] = []
            var offset: Int64 = 0
            while offset < size {
                let count = Int(min(Int64(Self.partSize), size - offset))
                let body = try Self.read(input, offset: offset, count: count)
                let part = etags.count + 1
                etags.append(try putPart(body, bucket: bucket, key: key,
                                         query: [("partNumber", String(part)), ("uploadId", uploadID)],
                                         operation: "\(operation) (part \(part))"))
                offset += Int64(count)
            }
            let parts = etags.enumerated().map { "<Part><PartNumber>\($0.offset + 1)</PartNumber><ETag>\"\($0.element)\"</ETag></Part>" }
            let xml = "<CompleteMultipartUpload>\(parts.joined())</CompleteMultipartUpload>"
            let done = try send("POST", bucket: bucket, key: key, query: [("uploadId", uploadID)], body: Array(xml.utf8), operation: operation)
            let text = String(decoding: done.body, as: UTF8.self)
            // Some servers answer 200 with an <Error> body when completion fails.
            if let code = S3XML.value("Code", in: text), text.contains("<Error>") {
                throw .http(endpoint: endpoint, operation: operation, status: 200, code: code, message: S3XML.value("Message", in: text) ?? "")
            }
            // Servers differ in the ETag they list for a multipart object (AWS: "HEX-N", rclone: the
            // whole MD5): record the one a listing will show.
            let head = try send("HEAD", bucket: bucket, key: key, operation: "head s3://\(bucket)/\(key)")
            let listed = Self.unquote(head.header("etag") ?? "")
            if Self.isPlainMD5(listed), let whole = try? Self.md5(input, size: size), whole != listed.lowercased() {
                throw .integrity(operation: operation, reason: "the server stored MD5 \(listed), the file has \(whole)")
            }
            return listed.isEmpty ? Self.unquote(S3XML.value("ETag", in: text) ?? "") : listed
        } catch {
            _ = try? send("DELETE", bucket: bucket, key: key, query: [("uploadId", uploadID)], operation: "abort \(operation)")
            throw error
        }
    }

    /// Aborts unfinished multipart uploads of `key` (e.g. of a push that was killed), so their
    /// parts do not linger on the server. Best effort: servers without the listing are fine.
    private func abandonStaleUploads(bucket: String, key: String) {
        guard let reply = try? send("GET", bucket: bucket, query: [("prefix", key), ("uploads", "")], operation: "list uploads") else { return }
        for upload in S3XML.elements("Upload", in: String(decoding: reply.body, as: UTF8.self)) {
            guard S3XML.value("Key", in: upload) == key, let id = S3XML.value("UploadId", in: upload) else { continue }
            _ = try? send("DELETE", bucket: bucket, key: key, query: [("uploadId", id)], operation: "abort stale upload")
        }
    }

    static func read(_ file: FileHandleFD, offset: Int64, count: Int) throws(S3Error) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = buffer.withUnsafeMutableBytes { pread(file.fd, $0.baseAddress! + done, count - done, off_t(offset) + off_t(done)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw n == 0 ? .integrity(operation: "read \(file.path)", reason: "the file shrank while it was uploaded")
                    : .file(FileError.last("read", file.path))
            }
            done += n
        }
        return buffer
    }

    /// MD5 of a whole file, read in parts.
    static func md5(_ file: FileHandleFD, size: Int64) throws(S3Error) -> String {
        let hasher: Digester
        do throws(CryptoError) { hasher = try Digester(.md5) } catch { throw .crypto(error) }
        var offset: Int64 = 0
        while offset < size {
            let chunk = try read(file, offset: offset, count: Int(min(Int64(4 << 20), size - offset)))
            hasher.update(chunk)
            offset += Int64(chunk.count)
        }
        return hasher.finalize().hexString
    }

    static func unquote(_ s: String) -> String {
        var t = Substring(s)
        if t.hasPrefix("\"") { t = t.dropFirst() }
        if t.hasSuffix("\"") { t = t.dropLast() }
        return String(t)
    }

    static func isPlainMD5(_ etag: String) -> Bool {
        etag.utf8.count == 32 && etag.unicodeScalars.allSatisfy { $0.properties.isASCIIHexDigit }
    }

    static func temporaryPath(for path: String) -> String {
        let slash = path.lastIndex(of: "/").map { path.index(after: $0) } ?? path.startIndex
        return path[..<slash] + ".wyrcan-partial." + path[slash...]
    }
}
