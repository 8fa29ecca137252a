import Foundation
import Testing

/// The registry client against real peers: docker-registry (plain, TLS, Basic auth), and the
/// misbehaving Tests/Fixtures/flakyregistry.py for token flows, mirrors, retries and lies.
@Suite(.serialized) struct RegistrySystemTests {
    static let small = ConvertSystemTests.small
    static let multiLayer = ConvertSystemTests.multiLayer

    /// docker-registry over TLS (a throw-away CA) with htpasswd user wyrcan:s3cret, holding
    /// `small` as test/small:small; `work`/layout is the image, `work`/auth.json the credentials.
    static func tlsRegistryWithBasicAuth(_ name: String, work: String) throws -> (LocalRegistry, TestPKI) {
        let pki = try TestPKI(name: "pki-\(name)")
        let registry = try LocalRegistry(name: name, pki: pki, htpasswd: ("wyrcan", "s3cret"))
        try Sys.buildImage(small, layout: work + "/layout")
        try registry.push(layout: work + "/layout", tag: "small", to: "test/small", credentials: ("wyrcan", "s3cret"))
        let auth = "{\"auths\": {\"\(registry.host)\": {\"auth\": \"\(Data("wyrcan:s3cret".utf8).base64EncodedString())\"}}}"
        try auth.write(toFile: work + "/auth.json", atomically: true, encoding: .utf8)
        return (registry, pki)
    }

    /// Builds `spec` into `work`/layout, serves it with flakyregistry.py `flags`, and converts
    /// `name` from it into `work`/out (the registry stays up while the caller holds it).
    static func convertFromFlaky(_ label: String, spec: String = small, flags: [String], name: String = "x/y:small",
                                 prepare: (String) throws -> Void = { _ in }) throws -> (result: Sys.Output, flaky: FlakyRegistry, work: String) {
        let work = try Sys.tempDir(label)
        try Sys.buildImage(spec, layout: work + "/layout")
        try prepare(work)
        let flaky = try FlakyRegistry(layout: work + "/layout", flags: flags)
        let r = try Sys.wyrcan(["convert", "\(flaky.host)/\(name)", "--insecure-registry", flaky.host, "-o", work + "/out", "--quiet"])
        return (r, flaky, work)
    }

    @Test func bearerTokenFlow() throws {
        let work = try Sys.tempDir("bearer")
        try Sys.buildImage(Self.small, layout: work + "/layout")
        let flaky = try FlakyRegistry(layout: work + "/layout", flags: ["--bearer"])
        let host = flaky.host
        defer { withExtendedLifetime(flaky) {} }
        let anonymous = try Sys.wyrcan(["convert", "\(host)/any/name:small", "--insecure-registry", host, "-o", work + "/a", "--quiet"])
        #expect(anonymous.status == 0, "\(anonymous.stderr)")
        #expect(flaky.server.output.contains("GET /token?service=flaky&scope=repository%3Aany%2Fname%3Apull"), "\(flaky.server.output)")
        #expect(flaky.server.output.contains("Bearer token-for-anonymous"))

        let auth = "{\"auths\": {\"\(host)\": {\"auth\": \"\(Data("wyrcan:s3cret".utf8).base64EncodedString())\"}}}"
        try auth.write(toFile: work + "/auth.json", atomically: true, encoding: .utf8)
        let user = try Sys.wyrcan(["convert", "\(host)/any/name:small", "--insecure-registry", host, "--auth-file", work + "/auth.json", "-o", work + "/u", "--quiet"])
        #expect(user.status == 0, "\(user.stderr)")
        #expect(flaky.server.output.contains("Bearer token-for-wyrcan"))

        let bad = "{\"auths\": {\"\(host)\": {\"username\": \"wyrcan\", \"password\": \"nope\"}}}"
        try bad.write(toFile: work + "/bad.json", atomically: true, encoding: .utf8)
        let denied = try Sys.wyrcan(["convert", "\(host)/any/name:small", "--insecure-registry", host, "--auth-file", work + "/bad.json", "-o", work + "/b", "--quiet"])
        #expect(denied.status == 1)
        #expect(denied.stderr.contains("token service refused user wyrcan with HTTP 401: DENIED: bad credentials"), "\(denied.stderr)")
    }

    @Test func tlsWithTestCAAndBasicAuth() throws {
        let work = try Sys.tempDir("tls")
        let (registry, pki) = try Self.tlsRegistryWithBasicAuth("auth", work: work)
        let bad = "{\"auths\": {\"\(registry.host)\": {\"username\": \"wyrcan\", \"password\": \"wrong\"}}}"
        try bad.write(toFile: work + "/bad.json", atomically: true, encoding: .utf8)
        let ref = "\(registry.host)/test/small:small"

        let ok = try Sys.wyrcan(["convert", ref, "--ca-file", pki.caCert, "--auth-file", work + "/auth.json", "-o", work + "/out", "--quiet"])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(FileManager.default.fileExists(atPath: work + "/out/initrd"))

        let untrusted = try Sys.wyrcan(["convert", ref, "--auth-file", work + "/auth.json", "-o", work + "/x", "--quiet"])
        #expect(untrusted.status == 1)
        #expect(untrusted.stderr.lowercased().contains("certificate"), "\(untrusted.stderr)")

        let wrong = try Sys.wyrcan(["convert", ref, "--ca-file", pki.caCert, "--auth-file", work + "/bad.json", "-o", work + "/x", "--quiet"])
        #expect(wrong.status == 1)
        #expect(wrong.stderr.contains("access denied"), "\(wrong.stderr)")

        let anonymous = try Sys.wyrcan(["convert", ref, "--ca-file", pki.caCert, "-o", work + "/x", "--quiet"])
        #expect(anonymous.status == 1)
        #expect(anonymous.stderr.contains("none configured"), "\(anonymous.stderr)")
        #expect(!FileManager.default.fileExists(atPath: work + "/x/initrd"))
    }

    @Test func corruptedBlobNeverProducesArtifacts() throws {
        let work = try Sys.tempDir("corrupt")
        let registry = try LocalRegistry(name: "corrupt")
        try Sys.buildImage(Self.small, layout: work + "/layout")
        try registry.push(layout: work + "/layout", tag: "small", to: "test/small")
        // Earlier artifacts in the output directory must survive a failed conversion.
        try FileManager.default.createDirectory(atPath: work + "/out", withIntermediateDirectories: true)
        try "previous".write(toFile: work + "/out/initrd", atomically: true, encoding: .utf8)

        let manifest = try Sys.sh("curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' http://\(registry.host)/v2/test/small/manifests/small")
        let layer = try #require((try JSONSerialization.jsonObject(with: Data(manifest.stdout.utf8)) as? [String: Any])?["layers"] as? [[String: Any]])
        let digest = try #require(layer.first?["digest"] as? String)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: registry.blobPath(digest)))
        bytes[bytes.count / 2] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: registry.blobPath(digest)))

        let r = try Sys.wyrcan(["convert", "\(registry.host)/test/small:small", "--insecure-registry", registry.host, "-o", work + "/out", "--quiet"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("blob \(digest): content digest is sha256:"), "\(r.stderr)")
        #expect(r.stderr.contains("refusing corrupted data"))
        #expect(try String(contentsOfFile: work + "/out/initrd", encoding: .utf8) == "previous")
        #expect(!FileManager.default.fileExists(atPath: work + "/out/kernel"))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: work + "/out")
        #expect(leftovers == ["initrd"], "\(leftovers)")
    }

    @Test func interruptedTransfersResumeWithRange() throws {
        let (r, flaky, work) = try Self.convertFromFlaky("flaky", spec: Self.multiLayer, flags: ["--cut-first", "--throttle-first"], name: "any/name:v1")
        #expect(r.status == 0, "\(r.stderr)")
        let log = flaky.server.output
        #expect(log.contains("bytes="), "no Range request in:\n\(log)")
        #expect(log.components(separatedBy: "/manifests/v1").count - 1 >= 2, "the 429 was retried")
        #expect(FileManager.default.fileExists(atPath: work + "/out/initrd"))
    }

    @Test func serverIgnoringRangeStillYieldsTheRightBytes() throws {
        let (r, flaky, _) = try Self.convertFromFlaky("norange", flags: ["--cut-first", "--ignore-range"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(flaky.server.output.contains("bytes="))
    }

    @Test func corruptServerIsRefused() throws {
        let (r, _, work) = try Self.convertFromFlaky("corrupt-server", flags: ["--corrupt"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("refusing corrupted data"), "\(r.stderr)")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: work + "/out")) == [])
    }

    /// A mirror that refuses us is skipped without ever seeing the registry's credentials; the
    /// registry (TLS, Basic auth, its CA given for its host only) then serves the image.
    @Test func aRefusingMirrorIsSkippedAndNeverSeesTheRegistrysPassword() throws {
        let work = try Sys.tempDir("mirror-deny")
        let (registry, pki) = try Self.tlsRegistryWithBasicAuth("mirrored", work: work)
        let mirror = try FlakyRegistry(layout: work + "/layout", flags: ["--deny"])
        defer { withExtendedLifetime(mirror) {} }

        let r = try Sys.wyrcan(["convert", "\(registry.host)/test/small:small", "--mirror", mirror.host, "--insecure-registry", mirror.host,
                                "--ca-file", "\(registry.host)=\(pki.caCert)", "--auth-file", work + "/auth.json", "-o", work + "/out", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(FileManager.default.fileExists(atPath: work + "/out/initrd"))
        let log = mirror.server.output
        #expect(log.contains("GET /v2/test/small/manifests/small"), "the mirror was asked first:\n\(log)")
        #expect(!log.contains("Basic "), "the registry's password went to the mirror:\n\(log)")
    }

    /// A mirror whose blobs are corrupt is dropped: the blobs come from the registry after all.
    @Test func aMirrorServingCorruptBlobsIsDroppedForTheRegistry() throws {
        let work = try Sys.tempDir("mirror-corrupt")
        let registry = try LocalRegistry(name: "mirror-corrupt")
        try Sys.buildImage(Self.small, layout: work + "/layout")
        try registry.push(layout: work + "/layout", tag: "small", to: "test/small")
        let mirror = try FlakyRegistry(layout: work + "/layout", flags: ["--corrupt"])
        defer { withExtendedLifetime(mirror) {} }
        let r = try Sys.wyrcan(["convert", "\(registry.host)/test/small:small", "--mirror", mirror.host, "--insecure-registry", mirror.host,
                                "--insecure-registry", registry.host, "-o", work + "/out", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(mirror.server.output.contains("/blobs/sha256:"), "the mirror was asked first")
        #expect(try String(contentsOfFile: work + "/out/cmdline", encoding: .utf8) == "console=ttyS0\n")
    }

    /// A mirror that has the image serves it all: the registry is not even reachable.
    @Test func aMirrorServesWhenTheRegistryIsDown() throws {
        let work = try Sys.tempDir("mirror-serves")
        try Sys.buildImage(Self.small, layout: work + "/layout")
        let mirror = try FlakyRegistry(layout: work + "/layout", flags: [])
        defer { withExtendedLifetime(mirror) {} }
        let down = "127.0.0.1:\(Sys.freePort())"
        let r = try Sys.wyrcan(["convert", "\(down)/test/small:small", "--mirror", "127.0.0.1:\(Sys.freePort())", "--mirror", mirror.host,
                                "--insecure-registry", mirror.host, "--insecure-registry", down, "-o", work + "/out", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try String(contentsOfFile: work + "/out/cmdline", encoding: .utf8) == "console=ttyS0\n")
        #expect(mirror.server.output.contains("/blobs/sha256:"))
    }

    /// `--ca-file HOST=FILE` trusts the CA for that host only; a missing file is refused up front.
    @Test func aCAFileForAnotherHostIsNotTrustedHere() throws {
        let work = try Sys.tempDir("ca-host")
        let pki = try TestPKI(name: "pki-ca-host")
        let registry = try LocalRegistry(name: "ca-host", pki: pki)
        try Sys.buildImage(Self.small, layout: work + "/layout")
        try registry.push(layout: work + "/layout", tag: "small", to: "test/small")
        let ref = "\(registry.host)/test/small:small"

        let other = try Sys.wyrcan(["convert", ref, "--ca-file", "127.0.0.9:443=\(pki.caCert)", "-o", work + "/x", "--quiet"])
        #expect(other.status == 1)
        #expect(other.stderr.lowercased().contains("certificate"), "\(other.stderr)")
        #expect(other.stderr.contains("--ca-file [HOST=]FILE"), "\(other.stderr)")

        // An existing file whose name holds '=' is a file, not HOST=FILE.
        try FileManager.default.copyItem(atPath: pki.caCert, toPath: work + "/ca=1.pem")
        let named = try Sys.run(Sys.binary("wyrcan"), ["convert", ref, "--ca-file", "ca=1.pem", "-o", work + "/named", "--quiet"], cwd: work)
        #expect(named.status == 0, "\(named.stderr)")

        let missing = try Sys.wyrcan(["convert", ref, "--ca-file", work + "/none.pem", "-o", work + "/x", "--quiet"])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("\(work)/none.pem does not exist"), "\(missing.stderr)")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: work + "/x")) ?? [] == [])
    }

    /// Plain HTTP only with the opt-in: without it the error says what to add, at once (no retries).
    @Test func plainHTTPNeedsTheOptIn() throws {
        let work = try Sys.tempDir("plain-refused")
        let registry = try LocalRegistry(name: "plain-refused")
        try Sys.buildImage(Self.small, layout: work + "/layout")
        try registry.push(layout: work + "/layout", tag: "small", to: "test/small")
        let r = try Sys.wyrcan(["convert", "\(registry.host)/test/small:small", "-o", work + "/out", "--quiet"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("https://\(registry.host)/v2/test/small/manifests/small"), "\(r.stderr)")
        #expect(r.stderr.contains("--insecure-registry"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1)
        #expect((try? FileManager.default.contentsOfDirectory(atPath: work + "/out")) == [])
    }

    /// A 503 is retried after the HTTP-date Retry-After (2 s ahead).
    @Test func serviceUnavailableIsRetriedAfterItsRetryAfterDate() throws {
        let (r, flaky, _) = try Self.convertFromFlaky("unavailable", flags: ["--unavailable-first"])
        #expect(r.status == 0, "\(r.stderr)")
        let times = flaky.server.output.split(separator: "\n").filter { $0.contains("/manifests/small") }
            .compactMap { $0.components(separatedBy: " at ").last.flatMap { Double($0) } }
        #expect(times.count == 2, "\(flaky.server.output)")
        if times.count == 2 { #expect(times[1] - times[0] >= 1.0, "retried after \(times[1] - times[0]) s, not after the Retry-After date") }
    }

    /// A blob that never arrives whole: resumed with Range until the attempts run out, then
    /// refused; nothing is written and the output directory keeps what it had.
    @Test(.timeLimit(.minutes(3)))
    func aTransferThatNeverCompletesLeavesNoArtifacts() throws {
        let (r, flaky, work) = try Self.convertFromFlaky("cut-always", flags: ["--cut-always"]) { work in
            try FileManager.default.createDirectory(atPath: work + "/out", withIntermediateDirectories: true)
            try "previous".write(toFile: work + "/out/kernel", atomically: true, encoding: .utf8)
        }
        #expect(r.status == 1)
        #expect(r.stderr.contains("bytes remaining to read") || r.stderr.contains("transfer ended after"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1)
        #expect(flaky.server.output.contains("bytes="), "resumed with Range")
        #expect(try FileManager.default.contentsOfDirectory(atPath: work + "/out") == ["kernel"])
        #expect(try String(contentsOfFile: work + "/out/kernel", encoding: .utf8) == "previous")
    }

    /// A token service that is busy (503, Retry-After: 3, longer than our own first backoff of
    /// 1 s) is asked again after that wait, not
    /// taken for a refusal of our credentials. (The registry also sends a Basic challenge after
    /// the Bearer one: the Bearer one is answered.)
    @Test func aBusyTokenServiceIsRetriedAfterItsRetryAfter() throws {
        let (r, flaky, _) = try Self.convertFromFlaky("token-busy", flags: ["--bearer", "--token-busy-first"], name: "any/name:small")
        #expect(r.status == 0, "\(r.stderr)")
        let times = flaky.server.output.split(separator: "\n").filter { $0.hasPrefix("GET /token") }
            .compactMap { $0.components(separatedBy: " at ").last.flatMap { Double($0) } }
        #expect(times.count >= 2, "\(flaky.server.output)")
        if times.count >= 2 { #expect(times[1] - times[0] >= 2.5, "asked again after \(times[1] - times[0]) s, not after its Retry-After") }
    }

    /// A token response that never ends is cut off at 1 MiB, with a message saying so.
    @Test(.timeLimit(.minutes(2)))
    func anEndlessTokenResponseIsRefused() throws {
        let (r, _, work) = try Self.convertFromFlaky("token-endless", flags: ["--bearer", "--endless-token"], name: "any/name:small")
        #expect(r.status == 1)
        #expect(r.stderr.contains("/token?") && r.stderr.contains("the response is larger than 1048576 bytes; refusing it"), "\(r.stderr)")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: work + "/out")) ?? [] == [])
    }

    /// Blob GETs in the flaky registry's log: (path, Range header).
    static func blobRequests(_ log: String) -> [(path: String, range: String)] {
        var requests: [(path: String, range: String)] = []
        for line in log.split(separator: "\n") {
            let fields = line.split(separator: " ").map(String.init)
            if fields.count > 2, fields[0] == "GET", fields[1].contains("/blobs/") { requests.append((fields[1], fields[2])) }
        }
        return requests
    }

    /// A resume answered with a 206 from another offset than asked (a broken proxy) is not
    /// appended: the blob is fetched again from the start. One answered from byte 0 is taken
    /// as the whole blob.
    @Test(arguments: [("--range-elsewhere", true), ("--range-from-zero", false)])
    func aResumeAnsweredFromElsewhereStartsOver(flag: String, startsOver: Bool) throws {
        let (r, flaky, _) = try Self.convertFromFlaky("range" + flag, flags: ["--cut-first", flag])
        #expect(r.status == 0, "\(r.stderr)")
        let requests = Self.blobRequests(flaky.server.output)
        let resumed = requests.filter { $0.range.hasPrefix("bytes=") }
        #expect(!resumed.isEmpty, "\(flaky.server.output)")
        for blob in Set(resumed.map(\.path)) {
            let plain = requests.filter { $0.path == blob && $0.range == "-" }.count
            #expect(plain == (startsOver ? 2 : 1), "\(blob): \(requests)")
        }
    }

    /// A blob longer or shorter than its descriptor says is refused at once, with what was
    /// wrong, not retried as if the network had failed; nothing is written. A size no layer can
    /// have (negative, or beyond 1 TiB) is refused with the manifest, before anything is fetched.
    @Test(arguments: [-1, 1, 1 << 62, -(1 << 62)])
    func aBlobWhoseSizeDisagreesWithItsDescriptorIsRefused(delta: Int) throws {
        var declared = 0
        let (r, flaky, work) = try Self.convertFromFlaky("size\(delta)", flags: []) { work in
            let fix = try Sys.run("/usr/bin/python3", ["-c", """
                import hashlib, json, os, sys
                layout, delta = sys.argv[1], int(sys.argv[2])
                index = json.load(open(layout + "/index.json"))
                old = index["manifests"][0]
                manifest = json.load(open(layout + "/blobs/sha256/" + old["digest"][7:]))
                manifest["layers"][0]["size"] += delta
                body = json.dumps(manifest).encode()
                digest = hashlib.sha256(body).hexdigest()
                open(layout + "/blobs/sha256/" + digest, "wb").write(body)
                old["digest"], old["size"] = "sha256:" + digest, len(body)
                json.dump(index, open(layout + "/index.json", "w"))
                print(manifest["layers"][0]["size"])
                """, work + "/layout", String(delta)])
            #expect(fix.status == 0, "\(fix.stderr)")
            declared = Int(fix.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        }
        #expect(r.status == 1)
        let expected = abs(delta) > 1 ? "has size \(declared)"
            : delta < 0 ? "got more than the \(declared) bytes its descriptor gives; refusing it"
            : "got \(declared - 1) bytes, expected \(declared); refusing truncated data"
        #expect(r.stderr.contains(expected), "\(r.stderr)")
        #expect(Self.blobRequests(flaky.server.output).count <= (abs(delta) > 1 ? 0 : 2), "not retried: \(flaky.server.output)")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: work + "/out")) ?? [] == [])
    }

    /// Ctrl-C while a blob is being fetched (here: resumed again and again): the work directory
    /// goes with everything in it, and the output directory keeps what it had.
    @Test(.timeLimit(.minutes(2)))
    func anInterruptedConversionLeavesNothingBehind() throws {
        let work = try Sys.tempDir("interrupted")
        try Sys.buildImage(Self.small, layout: work + "/layout")
        let flaky = try FlakyRegistry(layout: work + "/layout", flags: ["--cut-always"])
        try FileManager.default.createDirectory(atPath: work + "/out", withIntermediateDirectories: true)
        try "previous".write(toFile: work + "/out/kernel", atomically: true, encoding: .utf8)
        let convert = try Background(Sys.binary("wyrcan"), ["convert", "\(flaky.host)/x/y:small", "--insecure-registry", flaky.host, "-o", work + "/out"],
                                     log: work + "/convert.log")
        try Sys.waitFor("a resumed blob transfer", seconds: 60) { flaky.server.output.contains("bytes=") }
        #expect(try FileManager.default.contentsOfDirectory(atPath: work + "/out").contains { $0.hasPrefix(".wyrcan-work") })
        kill(convert.process.processIdentifier, SIGINT)
        convert.process.waitUntilExit()
        #expect(convert.process.terminationStatus == 130, "\(convert.output)")
        #expect(convert.output.contains("wyrcan: interrupted; nothing written"), "\(convert.output)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: work + "/out") == ["kernel"])
        #expect(try String(contentsOfFile: work + "/out/kernel", encoding: .utf8) == "previous")
    }

    /// A manifest fetched by tag must hash to the Docker-Content-Digest the registry announces.
    @Test func aManifestThatIsNotWhatTheRegistryAnnouncedIsRefused() throws {
        let (r, flaky, _) = try Self.convertFromFlaky("wrong-digest", flags: ["--wrong-digest"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("manifest \(flaky.host)/x/y@small: content digest is sha256:"), "\(r.stderr)")
        #expect(r.stderr.contains("expected sha256:0000"), "\(r.stderr)")
    }

    /// Docker's schema 2 manifest (what `docker push` writes), pushed by skopeo as v2s2.
    @Test func dockerSchema2Manifests() throws {
        let work = try Sys.tempDir("v2s2")
        let registry = try LocalRegistry(name: "v2s2")
        try Sys.buildImage(Self.small, layout: work + "/layout")
        let push = try Sys.run("/usr/bin/skopeo", ["copy", "--quiet", "--format", "v2s2", "--dest-tls-verify=false",
                                                   "oci:\(work)/layout:small", "docker://\(registry.host)/test/docker:small"])
        #expect(push.status == 0, "\(push.stderr)")
        let type = try Sys.sh("curl -sI -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' http://\(registry.host)/v2/test/docker/manifests/small | tr -d '\\r' | grep -i '^content-type'")
        #expect(type.stdout.contains("application/vnd.docker.distribution.manifest.v2+json"), "\(type.stdout)")
        let r = try Sys.wyrcan(["convert", "\(registry.host)/test/docker:small", "--insecure-registry", registry.host, "-o", work + "/out", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try String(contentsOfFile: work + "/out/cmdline", encoding: .utf8) == "console=ttyS0\n")
    }
}
