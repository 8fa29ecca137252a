#if canImport(Glibc)
import Glibc
#endif

/// AWS Signature Version 4 for S3 requests (path-style addressing), HMAC over libcrypto.
/// https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html
struct S3Signer: Sendable {
    var accessKey: String
    var secretKey: String
    var region: String

    /// The payload hash for bodies that are not hashed (their integrity is checked with Content-MD5).
    static let unsignedPayload = "UNSIGNED-PAYLOAD"
    static let emptyPayload = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    /// Returns the headers to send: the given ones plus x-amz-date, x-amz-content-sha256 and Authorization.
    func sign(
        method: String, host: String, path: String, query: [(String, String)],
        headers: [(String, String)], payloadHash: String, now: time_t = time(nil)
    ) throws(CryptoError) -> [(String, String)] {
        let (date, stamp) = Self.timestamps(now)
        var all = headers.map { ($0.0.lowercased(), $0.1.trimming(" \t")) }
        all.append(("host", host))
        all.append(("x-amz-content-sha256", payloadHash))
        all.append(("x-amz-date", stamp))
        all.sort { $0.0 < $1.0 }
        let signedHeaders = all.map(\.0).joined(separator: ";")
        let encoded: [(String, String)] = query.map { ($0.0.percentEncoded(), $0.1.percentEncoded()) }
        let sorted = encoded.sorted { (a: (String, String), b: (String, String)) -> Bool in a.0 == b.0 ? a.1 < b.1 : a.0 < b.0 }
        let canonicalQuery = sorted.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
        let canonicalRequest = [
            method, path.percentEncoded(keepingSlash: true), canonicalQuery,
            all.map { "\($0.0):\($0.1)\n" }.joined(), signedHeaders, payloadHash,
        ].joined(separator: "\n")
        let scope = "\(date)/\(region)/s3/aws4_request"
        let stringToSign = [
            "AWS4-HMAC-SHA256", stamp, scope,
            try Digester.hash(.sha256, Array(canonicalRequest.utf8)).hexString,
        ].joined(separator: "\n")
        var key = try HMAC.sha256(key: Array("AWS4\(secretKey)".utf8), message: Array(date.utf8))
        for part in [region, "s3", "aws4_request"] { key = try HMAC.sha256(key: key, message: Array(part.utf8)) }
        let signature = try HMAC.sha256(key: key, message: Array(stringToSign.utf8)).hexString
        var out = headers
        out.append(("x-amz-content-sha256", payloadHash))
        out.append(("x-amz-date", stamp))
        out.append(("Authorization", "AWS4-HMAC-SHA256 Credential=\(accessKey)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"))
        return out
    }

    /// ("20261128", "20261128T152800Z") in UTC.
    static func timestamps(_ now: time_t) -> (String, String) {
        var t = now
        var tm = tm()
        gmtime_r(&t, &tm)
        func pad(_ v: Int32, _ width: Int) -> String { String(v).zeroPadded(to: width) }
        let date = pad(tm.tm_year + 1900, 4) + pad(tm.tm_mon + 1, 2) + pad(tm.tm_mday, 2)
        return (date, date + "T" + pad(tm.tm_hour, 2) + pad(tm.tm_min, 2) + pad(tm.tm_sec, 2) + "Z")
    }
}

/// Times as S3 writes them.
enum S3Time {
    /// Parses ISO 8601 UTC ("2026-11-28T15:28:00.000Z") to Unix seconds.
    static func parse(_ s: String) -> Int64? {
        let digits = s.utf8.map { Int32($0) - 48 }
        func number(_ from: Int, _ length: Int) -> Int32? {
            guard from + length <= digits.count else { return nil }
            var v: Int32 = 0
            for d in digits[from..<from + length] {
                guard (0...9).contains(d) else { return nil }
                v = v * 10 + d
            }
            return v
        }
        guard let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
              let hour = number(11, 2), let minute = number(14, 2), let second = number(17, 2) else { return nil }
        var tm = tm()
        tm.tm_year = year - 1900
        tm.tm_mon = month - 1
        tm.tm_mday = day
        tm.tm_hour = hour
        tm.tm_min = minute
        tm.tm_sec = second
        return Int64(timegm(&tm))
    }
}
