import Testing
@testable import WyrcanChain

@Suite struct S3Tests {
    /// AWS's published example: GET /test.txt of examplebucket with a Range header.
    /// https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html
    @Test func sigV4MatchesAWSExample() throws {
        let signer = S3Signer(accessKey: "AKIAIOSFODNN7EXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", region: "us-east-1")
        let headers = try signer.sign(method: "GET", host: "examplebucket.s3.amazonaws.com", path: "/test.txt", query: [],
                                      headers: [("Range", "bytes=0-9")], payloadHash: S3Signer.emptyPayload, now: 1369353600)
        let auth = headers.first { $0.0 == "Authorization" }?.1
        #expect(auth == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        #expect(headers.contains { $0 == ("x-amz-date", "20130524T000000Z") })
    }

    /// AWS's example for a query-string request (ListObjects with max-keys and prefix).
    @Test func sigV4CanonicalQueryIsSorted() throws {
        let signer = S3Signer(accessKey: "AKIAIOSFODNN7EXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", region: "us-east-1")
        let headers = try signer.sign(method: "GET", host: "examplebucket.s3.amazonaws.com", path: "/",
                                      query: [("prefix", "J"), ("max-keys", "2")], headers: [],
                                      payloadHash: S3Signer.emptyPayload, now: 1369353600)
        let auth = headers.first { $0.0 == "Authorization" }?.1 ?? ""
        #expect(auth.hasSuffix("Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"))
    }

    @Test func defaultPortsAreLeftOutOfTheSignedHost() throws {
        func host(_ url: String) throws -> String { try S3Client(alias: S3Alias(alias: "a", url: url, accessKey: "k", secretKey: "s")).host }
        #expect(try host("https://s3.example.com:443/") == "s3.example.com")
        #expect(try host("http://127.0.0.1:80") == "127.0.0.1")
        #expect(try host("http://127.0.0.1:9000/base") == "127.0.0.1:9000")
    }

    @Test func uriEncoding() {
        #expect("a b/ü~.txt".percentEncoded(keepingSlash: true) == "a%20b/%C3%BC~.txt")
        #expect("a/b+c=".percentEncoded() == "a%2Fb%2Bc%3D")
    }

    @Test func listingXML() {
        let xml = """
            <?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">\
            <IsTruncated>true</IsTruncated><Contents><Key>a&amp;b &lt;c&gt; &#233;</Key><LastModified>2026-11-28T15:31:43.000Z</LastModified>\
            <ETag>&quot;b1946ac92492d2347c6235b4d2611184&quot;</ETag><Size>6</Size></Contents>\
            <Contents><Key>x</Key><Size>0</Size></Contents><NextContinuationToken>t/1=</NextContinuationToken></ListBucketResult>
            """
        let contents = S3XML.elements("Contents", in: xml)
        #expect(contents.count == 2)
        #expect(S3XML.value("Key", in: contents[0]) == "a&b <c> é")
        #expect(S3Client.unquote(S3XML.value("ETag", in: contents[0]) ?? "") == "b1946ac92492d2347c6235b4d2611184")
        #expect(S3Time.parse(S3XML.value("LastModified", in: contents[0]) ?? "") == 1795879903)
        #expect(S3XML.value("NextContinuationToken", in: xml) == "t/1=")
    }

    @Test func pathsThatEscapeTheVolumeAreRefused() {
        #expect(LocalTree.isSafe("a/b.txt"))
        for bad in ["../etc/passwd", "a/../../b", "/abs", "dir/", "a//b", "./a", ""] { #expect(!LocalTree.isSafe(bad), "\(bad)") }
    }

    @Test func excludeMatchesPathOrName() {
        #expect(LocalTree.isExcluded("logs/x.tmp", by: ["*.tmp"]))
        #expect(LocalTree.isExcluded("cache/a/b", by: ["cache/*"]))
        #expect(!LocalTree.isExcluded("keep.txt", by: ["*.tmp"]))
    }
}
