import Foundation
import Testing
@testable import WyrcanChain
import WyrcanHTTP

/// TLS between the one HTTP layer (libcurl, OpenSSL) and the server (libmicrohttpd, GnuTLS) with
/// certificates made by the openssl command: a CA, a key pin, and the wrong ones.
@Suite(.serialized) struct TLSPeerSystemTests {
    static func echoServer(tls: HTTPServer.TLS) throws -> HTTPServer {
        try HTTPServer(.init(host: "127.0.0.1", port: 0, threads: 2, tls: tls)) { request in
            request.path == "/hello" ? .text(200, "hello") : .text(404, "no such path\n")
        }
    }

    /// A TLS listener with a fresh self-signed certificate for 127.0.0.1; its files stay for the test.
    static func tlsServer(in dir: String) throws -> (HTTPServer, cert: String, pin: String) {
        let key = dir + "/key.pem", cert = dir + "/cert.pem"
        try run("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                                     "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
        let der = try run("/usr/bin/openssl", ["pkey", "-in", key, "-pubout", "-outform", "DER"])
        let pin = "sha256//" + Data(try Digester.hash(.sha256, der)).base64EncodedString()
        // The server's own pin (wyrcan-serve's wyr.server_pin), from the certificate alone.
        #expect(try PublicKeyPin.of(certificatePEM: String(contentsOfFile: cert, encoding: .utf8)) == pin)
        let tls = HTTPServer.TLS(certificatePEM: try String(contentsOfFile: cert, encoding: .utf8),
                                 keyPEM: try String(contentsOfFile: key, encoding: .utf8), priorities: "NORMAL")
        return (try Self.echoServer(tls: tls), cert, pin)
    }

    @discardableResult
    static func run(_ tool: String, _ arguments: [String]) throws -> [UInt8] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = arguments
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw CocoaError(.executableLoad) }
        return Array(data)
    }

    @Test func serversAreTrustedByCAOrByKeyPin() throws {
        let dir = try Sys.tempDir("wyrcan-http-tls")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (server, cert, pin) = try Self.tlsServer(in: dir)
        defer { server.stop() }
        let client = try HTTPClient()
        let url = "https://127.0.0.1:\(server.port)/hello"
        // Unknown to the system's CAs: refused.
        #expect(throws: CurlError.self) { try client.send(HTTPRequest(url: url)) }
        #expect(try client.send(HTTPRequest(url: url, options: HTTPOptions().trusting(caFile: cert))).status == 200)
        // The right key pinned, on top of the CA: accepted; another key: refused, whoever signed it.
        #expect(try client.send(HTTPRequest(url: url, options: HTTPOptions().trusting(caFile: cert, pinnedPublicKey: pin))).status == 200)
        let wrong = "sha256//" + Data(repeating: 1, count: 32).base64EncodedString()
        do {
            _ = try client.send(HTTPRequest(url: url, options: HTTPOptions().trusting(caFile: cert, pinnedPublicKey: wrong)))
            Issue.record("a wrong pin was accepted")
        } catch {
            #expect(!error.isTransient)
        }
    }

    /// A server answering /v1/config/MAC with `answer`, over TLS with a fresh certificate.
    static func configServer(in dir: String, answer: String) throws -> (HTTPServer, cert: String, pin: String) {
        let key = dir + "/key.pem", cert = dir + "/cert.pem"
        try Self.run("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                                                     "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
        let pem = try String(contentsOfFile: cert, encoding: .utf8)
        let tls = HTTPServer.TLS(certificatePEM: pem, keyPEM: try String(contentsOfFile: key, encoding: .utf8), priorities: "NORMAL")
        let server = try HTTPServer(.init(tls: tls)) { request in
            request.path == "/v1/config/52:54:00:12:34:56" ? .text(200, answer) : .text(404, "52:54:00:12:34:57 is not in the inventory\n")
        }
        return (server, cert, try PublicKeyPin.of(certificatePEM: pem))
    }

    @Test func fetchTrustsTheCAOrThePinAndNothingElse() throws {
        let dir = try Sys.tempDir("wyrcan-config-server")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (server, cert, pin) = try Self.configServer(in: dir, answer: "# this host\nwyr.img=r.io/os wyr.s3=store,http://s3,AK,TOPSECRET\n")
        defer { server.stop() }
        try FileManager.default.createDirectory(atPath: dir + "/other", withIntermediateDirectories: true)
        let (other, otherCert, otherPin) = try Self.configServer(in: dir + "/other", answer: "")
        other.stop()
        let url = "https://127.0.0.1:\(server.port)"
        let mac = MACAddress("52:54:00:12:34:56")!
        let client = try HTTPClient()

        let byCA = try ConfigServer(args: WyrcanArgs(parsing: "wyr.server=\(url)"), caFile: cert).fetch(for: mac, client: client)
        #expect(byCA.image?.description == "r.io/os:latest" && byCA.s3.first?.secretKey == "TOPSECRET")
        let byPin = try ConfigServer(args: WyrcanArgs(parsing: "wyr.server=\(url) wyr.server_pin=\(pin)"), caFile: nil).fetch(for: mac, client: client)
        #expect(byPin.image != nil)

        func refusal(_ cmdline: String, caFile: String?) throws -> ConfigServerError? {
            let server = try ConfigServer(args: WyrcanArgs(parsing: cmdline), caFile: caFile)
            do { _ = try server.fetch(for: mac, client: client) } catch { return error }
            return nil
        }
        let wrongCA = try #require(try refusal("wyr.server=\(url)", caFile: otherCert))
        #expect(wrongCA.description.hasPrefix("wyr.server=\(url): the server's certificate is not trusted by the CA in \(otherCert)") && !wrongCA.isTransient, "\(wrongCA)")
        let wrongPin = try #require(try refusal("wyr.server=\(url) wyr.server_pin=\(otherPin)", caFile: nil))
        #expect(wrongPin.description == "wyr.server=\(url): the server's public key is not the one in wyr.server_pin; refusing it", "\(wrongPin)")
        let unknown = try ConfigServer(args: WyrcanArgs(parsing: "wyr.server=\(url)"), caFile: cert)
        #expect(throws: ConfigServerError.self) { try unknown.fetch(for: MACAddress("52:54:00:12:34:57")!, client: client) }
    }
}
