import Foundation
import Testing
@testable import WyrcanChain
import WyrcanHTTP

/// The one HTTP request layer (`HTTPClient` over libcurl) against the real server (libmicrohttpd).
@Suite(.serialized) struct HTTPClientTests {
    static func echoServer(tls: HTTPServer.TLS? = nil) throws -> HTTPServer {
        try HTTPServer(.init(host: "127.0.0.1", port: 0, threads: 2, tls: tls)) { request in
            switch (request.method, request.path) {
            case ("GET", "/hello"), ("HEAD", "/hello"):
                return .text(200, "hello \(request.queryValue("mac") ?? "?") \(request.header("X-Test") ?? "")")
            case ("POST", "/echo"):
                return HTTPServerResponse(status: 201, headers: [("X-Length", "\(request.body.count)")], body: .bytes(request.body))
            case ("GET", "/big"):
                return HTTPServerResponse(status: 200, body: .bytes(Array(repeating: 7, count: 100_000)))
            case ("GET", "/big-error"):
                return HTTPServerResponse(status: 500, body: .bytes(Array(repeating: 65, count: 100_000)))
            case ("GET", "/moved"):
                return HTTPServerResponse(status: 302, headers: [("Location", "/hello")])
            case ("GET", "/busy"):
                return HTTPServerResponse(status: 503, headers: [("Retry-After", "7")])
            default:
                return .text(404, "no such path: \(request.path)\n")
            }
        }
    }

    @Test func requestsRoundTrip() throws {
        let server = try Self.echoServer()
        defer { server.stop() }
        let client = try HTTPClient()
        let base = "http://127.0.0.1:\(server.port)"

        let get = try client.send(HTTPRequest(url: base + "/hello?mac=52:54:00:12:34:56", headers: ["X-Test: yes"]))
        #expect(get.status == 200 && get.isSuccess)
        #expect(String(decoding: get.body, as: UTF8.self) == "hello 52:54:00:12:34:56 yes")
        #expect(get.header("Content-Type") == "text/plain; charset=utf-8")

        let payload = Array((0..<300_000).map { UInt8(truncatingIfNeeded: $0 * 7) })
        let post = try client.send(HTTPRequest("POST", url: base + "/echo", body: payload))
        #expect(post.status == 201)
        #expect(post.header("x-length") == "300000")
        #expect(post.body == payload)

        #expect(try client.send(HTTPRequest(url: base + "/nope")).status == 404)
        #expect(try client.send(HTTPRequest("HEAD", url: base + "/hello")).body.isEmpty)
    }

    @Test func oversizedRequestBodyIsRefusedByTheServer() throws {
        let server = try HTTPServer(.init(maximumBodyBytes: 1000)) { _ in .text(200, "ok") }
        defer { server.stop() }
        let r = try HTTPClient().send(HTTPRequest("POST", url: "http://127.0.0.1:\(server.port)/x", body: Array(repeating: 1, count: 5000)))
        #expect(r.status == 413)
    }

    @Test func fileBodiesAreServed() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("wyrcan-file-\(getpid())").path
        let content = Array((0..<100_000).map { UInt8(truncatingIfNeeded: $0) })
        _ = FileManager.default.createFile(atPath: path, contents: Data(content))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let server = try HTTPServer(.init()) { _ in
            let fd = open(path, O_RDONLY)
            return HTTPServerResponse(status: 206, body: .file(descriptor: fd, offset: 1000, length: 500))
        }
        defer { server.stop() }
        let r = try HTTPClient().send(HTTPRequest(url: "http://127.0.0.1:\(server.port)/f"))
        #expect(r.status == 206)
        #expect(r.body == Array(content[1000..<1500]))
    }

    @Test func transportErrorsAreTyped() throws {
        // Port 1 on loopback: nothing listens there.
        do {
            _ = try HTTPClient().send(HTTPRequest(url: "http://127.0.0.1:1/"))
            Issue.record("connected to port 1")
        } catch {
            #expect(error.isTransient)
            #expect(error.description.hasPrefix("http://127.0.0.1:1/"))
        }
    }

    @Test func bodiesAreBoundedAndStreamed() throws {
        let server = try Self.echoServer()
        defer { server.stop() }
        let client = try HTTPClient()
        let base = "http://127.0.0.1:\(server.port)"
        var small = HTTPOptions()
        small.maximumBufferedBytes = 10_000
        // A wanted body over the limit fails whole…
        #expect(throws: CurlError.self) { try client.send(HTTPRequest(url: base + "/big", options: small)) }
        // …an error body is only a message: cut at the limit.
        let error = try client.send(HTTPRequest(url: base + "/big-error", options: small))
        #expect(error.status == 500 && error.body.count == 10_000)
        // A receiver takes a 2xx body instead of memory; the head is seen once, before it.
        var heads: [Int] = []
        var received = 0
        let streamed = try client.send(HTTPRequest(url: base + "/big", options: small), onHead: { heads.append($0.status) }) { chunk in
            received += chunk.count
            return true
        }
        #expect(heads == [200] && received == 100_000 && streamed.body.isEmpty && !streamed.stoppedByReceiver)
        // A receiver that stops ends the transfer without an error.
        let stopped = try client.send(HTTPRequest(url: base + "/big"), receive: { _ in false })
        #expect(stopped.stoppedByReceiver && stopped.body.isEmpty)
    }

    @Test func redirectsOnlyWhenAskedAndHTTPSOnlyRefusesPlainURLs() throws {
        let server = try Self.echoServer()
        defer { server.stop() }
        let client = try HTTPClient()
        let url = "http://127.0.0.1:\(server.port)/moved"
        #expect(try client.send(HTTPRequest(url: url)).status == 302)
        var follow = HTTPOptions()
        follow.followRedirects = true
        let followed = try client.send(HTTPRequest(url: url, options: follow))
        #expect(followed.status == 200 && client.effectiveURL.hasSuffix("/hello"))
        var httpsOnly = HTTPOptions()
        httpsOnly.httpsOnly = true
        #expect(throws: CurlError.self) { try client.send(HTTPRequest(url: url, options: httpsOnly)) }
    }

    @Test func retryAfterIsReadInSecondsOrAsADateFromTheServersClock() {
        #expect(HTTPResponse(status: 503, headers: [("retry-after", "7")]).retryAfter == 7)
        let dated = HTTPResponse(status: 503, headers: [("retry-after", "Wed, 21 Oct 2015 07:28:30 GMT"), ("date", "Wed, 21 Oct 2015 07:28:00 GMT")])
        #expect(dated.retryAfter == 30)
        #expect(HTTPResponse(status: 503, headers: [("retry-after", "soon")]).retryAfter == nil)
        #expect(HTTPResponse(status: 503).retryAfter == nil)
    }
}

@Suite struct RetryPolicyTests {
    struct Failure: RetryableError, Equatable {
        var isTransient: Bool
        var retryAfter: Double? = nil
    }

    @Test func delaysGrowToTheCapAndJitterOnlyShortensThem() {
        let policy = RetryPolicy(attempts: 6, initialDelay: 1, maximumDelay: 5, jitter: 0.5)
        #expect((1...5).map { policy.delay(after: $0, retryAfter: nil, random: 0) } == [1, 2, 4, 5, 5])
        #expect(policy.delay(after: 3, retryAfter: nil, random: 0.999) > 2)
        #expect(policy.delay(after: 3, retryAfter: nil, random: 1) == 2)
        // The boot agent's own: 20 s then 45 s.
        #expect((1...2).map { RetryPolicy.bootAttempts.delay(after: $0, retryAfter: nil, random: 0) } == [20, 45])
    }

    @Test func retryAfterWinsUpToItsCap() {
        let policy = RetryPolicy(attempts: 3, initialDelay: 1, maximumDelay: 30, longestRetryAfter: 300)
        #expect(policy.delay(after: 1, retryAfter: 7, random: 0.5) == 7)
        #expect(policy.delay(after: 1, retryAfter: 9999, random: 0.5) == 300)
    }

    @Test func onlyTransientErrorsAreRetriedAndTheLastErrorIsThrown() throws {
        let policy = RetryPolicy(attempts: 3, initialDelay: 1, maximumDelay: 30, jitter: 0)
        var slept: [Double] = []
        var heard: [Int] = []
        var tries = 0
        #expect(throws: Failure(isTransient: true, retryAfter: 4)) {
            try policy.run(willRetry: { heard.append($0.attempt) }, sleep: { slept.append($0) }) { (n) throws(Failure) in
                tries = n
                throw Failure(isTransient: true, retryAfter: n == 1 ? nil : 4)
            }
        }
        #expect(tries == 3 && slept == [1, 4] && heard == [1, 2])
        tries = 0
        #expect(throws: Failure(isTransient: false)) {
            try policy.run(sleep: { _ in Issue.record("slept") }) { (n) throws(Failure) in
                tries = n
                throw Failure(isTransient: false)
            }
        }
        #expect(tries == 1)
        let value = try policy.run(sleep: { _ in }) { (n) throws(Failure) -> Int in
            if n < 2 { throw Failure(isTransient: true) }
            return n
        }
        #expect(value == 2)
    }

    @Test func statusesWorthRetrying() {
        #expect(RetryPolicy.isTransient(status: 429) && RetryPolicy.isTransient(status: 503))
        #expect(!RetryPolicy.isTransient(status: 404) && !RetryPolicy.isTransient(status: 401))
    }
}
