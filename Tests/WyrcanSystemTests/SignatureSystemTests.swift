import Foundation
import Testing

/// Image signatures made by a real signer: Debian trixie's skopeo (sigstore is patched out of
/// bookworm's; scripts/fetch-skopeo-sigstore unpacks trixie's privately) signs with a key it
/// generated and pushes to docker-registry; `wyrcan verify` and `convert --verify-key` accept and
/// refuse exactly what skopeo's own `sigstoreSigned` policy accepts and refuses.
@Suite(.serialized) struct SignatureSystemTests {
    final class Rig: @unchecked Sendable {
        let dir: String
        let registry: LocalRegistry
        let skopeo: String
        var repository: String { "\(registry.host)/demo/signed" }
        /// Manifest digests of the images: signed by k1; unsigned; carrying a copy of the signed
        /// one's signature; signed by k1, then the payload edited; two signed by k1 as `:prod`.
        var digests: [String: String] = [:]

        init() throws {
            dir = try Sys.tempDir("signatures")
            registry = try LocalRegistry(name: "signatures")
            let fetched = try Sys.run(Sys.root + "/scripts/fetch-skopeo-sigstore", [])
            guard fetched.status == 0, let path = fetched.stdout.split(separator: "\n").last else { throw SysError("fetch-skopeo-sigstore: \(fetched.stderr)") }
            skopeo = String(path)
            try "test passphrase\n".write(toFile: dir + "/pass", atomically: true, encoding: .utf8)
            for key in ["k1", "k2"] {
                try Sys.succeeded(try Sys.run(skopeo, ["generate-sigstore-key", "--output-prefix", "\(dir)/\(key)", "--passphrase-file", dir + "/pass"]), "generate-sigstore-key")
            }
            try FileManager.default.createDirectory(atPath: dir + "/registries.d", withIntermediateDirectories: true)
            try "docker:\n  \(registry.host):\n    use-sigstore-attachments: true\n".write(toFile: dir + "/registries.d/test.yaml", atomically: true, encoding: .utf8)
            try #"{"default":[{"type":"insecureAcceptAnything"}]}"#.write(toFile: dir + "/policy-any.json", atomically: true, encoding: .utf8)
            for key in ["k1", "k2"] {
                try """
                    {"default":[{"type":"reject"}],
                     "transports":{"docker":{"\(registry.host)":[{"type":"sigstoreSigned","keyPath":"\(dir)/\(key).pub"}]},
                                   "oci":{"":[{"type":"insecureAcceptAnything"}]}}}
                    """.write(toFile: "\(dir)/policy-\(key).json", atomically: true, encoding: .utf8)
            }
            // ("release" and "release2" are signed as :prod, the tag wyrcan-serve's test moves.)
            for (tag, seed, signed) in [("signed", 11, true), ("unsigned", 12, false), ("copied", 13, false), ("edited", 14, true), ("release", 15, true), ("release2", 16, true)] {
                let layout = "\(dir)/\(tag)"
                _ = try Sys.buildImage(ConvertSystemTests.small.replacingOccurrences(of: "\"seed\": 3", with: "\"seed\": \(seed)"), layout: layout)
                var args = ["--policy", dir + "/policy-any.json", "--registries.d", dir + "/registries.d", "copy", "--quiet", "--dest-tls-verify=false"]
                if signed { args += ["--sign-by-sigstore-private-key", dir + "/k1.private", "--sign-passphrase-file", dir + "/pass"] }
                if tag.hasPrefix("release") { args += ["--sign-identity", "\(repository):prod"] }
                try Sys.succeeded(try Sys.run(skopeo, args + ["oci:\(layout):small", "docker://\(repository):\(tag)"]), "skopeo copy \(tag)")
                let head = try Sys.sh("curl -sfI -H 'Accept: application/vnd.oci.image.manifest.v1+json' http://\(registry.host)/v2/demo/signed/manifests/\(tag)").stdout
                let line = head.split(whereSeparator: \.isNewline).first { $0.lowercased().hasPrefix("docker-content-digest:") }
                guard let line else { throw SysError("no digest for \(tag): \(head)") }
                digests[tag] = line.dropFirst("docker-content-digest:".count).trimmingCharacters(in: .whitespaces)
            }
            try attachCopiedSignature()
            try editSignedPayload()
        }

        func signatureTag(_ tag: String) -> String { "sha256-\(digests[tag]!.dropFirst(7)).sig" }

        /// Points `tag` at the manifest `source` names (the registry's API, as a push would).
        func retag(_ source: String, as tag: String) throws {
            let api = "http://\(registry.host)/v2/demo/signed"
            try Sys.succeeded(try Sys.sh("""
                set -e
                curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' \(api)/manifests/\(source) > '\(dir)/retag.json'
                curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @'\(dir)/retag.json' \(api)/manifests/\(tag)
                """), "retagging \(source) as \(tag)")
        }

        /// The signed image's signature manifest, as is, under the "copied" image's signature tag.
        func attachCopiedSignature() throws {
            let api = "http://\(registry.host)/v2/demo/signed"
            try Sys.succeeded(try Sys.sh("""
                set -e
                curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' \(api)/manifests/\(signatureTag("signed")) > '\(dir)/copied.sig.json'
                curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @'\(dir)/copied.sig.json' \(api)/manifests/\(signatureTag("copied"))
                """), "copying the signature")
        }

        /// The "edited" image's payload with one byte changed, uploaded as a new blob, and its
        /// signature manifest rewritten to name it (the signature annotation kept).
        func editSignedPayload() throws {
            let api = "http://\(registry.host)/v2/demo/signed"
            let manifestText = try Sys.sh("curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' \(api)/manifests/\(signatureTag("edited"))").stdout
            let manifest = try JSONSerialization.jsonObject(with: Data(manifestText.utf8)) as? [String: Any]
            guard let layer = (manifest?["layers"] as? [[String: Any]])?.first, let oldDigest = layer["digest"] as? String else {
                throw SysError("signature manifest: \(manifestText)")
            }
            let payload = try Sys.sh("curl -sf \(api)/blobs/\(oldDigest)").stdout
            let edited = payload.replacingOccurrences(of: "cosign container image signature", with: "cosign container image signaturE")
            try edited.write(toFile: dir + "/edited.payload", atomically: true, encoding: .utf8)
            let newDigest = "sha256:" + (try Sys.sh("sha256sum < '\(dir)/edited.payload' | cut -d' ' -f1").stdout.trimmingCharacters(in: .whitespacesAndNewlines))
            let rewritten = manifestText.replacingOccurrences(of: oldDigest, with: newDigest)
                .replacingOccurrences(of: "\"size\":\(payload.utf8.count),", with: "\"size\":\(edited.utf8.count),")
            try rewritten.write(toFile: dir + "/edited.sig.json", atomically: true, encoding: .utf8)
            try Sys.succeeded(try Sys.sh("""
                set -e
                location=$(curl -sf -X POST -D - -o /dev/null \(api)/blobs/uploads/ | tr -d '\\r' | awk -F': ' 'tolower($1)=="location"{print $2}')
                case $location in http*) ;; *) location="http://\(registry.host)$location" ;; esac
                curl -sf -X PUT -H 'Content-Type: application/octet-stream' --data-binary @'\(dir)/edited.payload' "$location&digest=\(newDigest)"
                curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @'\(dir)/edited.sig.json' \(api)/manifests/\(signatureTag("edited"))
                """), "editing the payload")
        }

        func verify(_ tag: String, key: String) throws -> Sys.Output {
            try Sys.wyrcan(["verify", "\(repository):\(tag)", "--key", "\(dir)/\(key).pub", "--insecure-registry", registry.host])
        }

        /// Whether skopeo, with the policy trusting only `key`, accepts the image.
        func skopeoAccepts(_ tag: String, key: String) throws -> Bool {
            let out = "\(dir)/skopeo-out-\(tag)-\(key)"
            try? FileManager.default.removeItem(atPath: out)
            return try Sys.run(skopeo, ["--policy", "\(dir)/policy-\(key).json", "--registries.d", dir + "/registries.d", "copy", "--quiet",
                                        "--src-tls-verify=false", "--remove-signatures", "docker://\(repository):\(tag)", "oci:\(out):x"]).status == 0
        }
    }

    static let shared = SharedRig(build: { try Rig() }, server: { $0.registry.server })
    static func rig() throws -> Rig { try shared.get() }

    @Test func aSignedImageIsAcceptedWithItsKeyOnly() throws {
        let rig = try Self.rig()
        let good = try rig.verify("signed", key: "k1")
        #expect(good.status == 0 && good.stdout == rig.digests["signed"]! + "\n", "\(good.stderr)")
        #expect(good.stderr.contains("@\(rig.digests["signed"]!): signed by key k1"), "\(good.stderr)")
        let other = try rig.verify("signed", key: "k2")
        #expect(other.status == 1)
        #expect(other.stderr.contains("not signed by key k2: found 1 signature(s): signed by none of the keys"), "\(other.stderr)")
        // Both keys given: either one will do.
        let either = try Sys.wyrcan(["verify", "\(rig.repository):signed", "--key", rig.dir + "/k2.pub", "--key", rig.dir + "/k1.pub", "--insecure-registry", rig.registry.host])
        #expect(either.status == 0, "\(either.stderr)")
        #expect(try rig.skopeoAccepts("signed", key: "k1") && !(try rig.skopeoAccepts("signed", key: "k2")))
    }

    /// Unsigned, a signature copied from another image, a payload changed after signing: each
    /// refused, with what was found; skopeo's policy refuses the same three.
    @Test func unsignedCopiedAndEditedSignaturesAreRefused() throws {
        let rig = try Self.rig()
        let unsigned = try rig.verify("unsigned", key: "k1")
        #expect(unsigned.status == 1 && unsigned.stderr.contains("no signature (no \(rig.signatureTag("unsigned")) in the registry); it must be signed by key k1"), "\(unsigned.stderr)")
        let copied = try rig.verify("copied", key: "k1")
        #expect(copied.status == 1 && copied.stderr.contains("a valid signature for another image (\(rig.digests["signed"]!))"), "\(copied.stderr)")
        let edited = try rig.verify("edited", key: "k1")
        #expect(edited.status == 1 && edited.stderr.contains("found 1 signature(s): signed by none of the keys"), "\(edited.stderr)")
        for tag in ["unsigned", "copied", "edited"] {
            #expect(!(try rig.skopeoAccepts(tag, key: "k1")), "skopeo accepted \(tag)")
        }
    }

    /// `convert --verify-key`: converts a signed image; refuses an unsigned one before fetching
    /// a layer, writing nothing; refuses an OCI layout (it carries no signatures).
    @Test func convertChecksSignaturesBeforeFetchingLayers() throws {
        let rig = try Self.rig()
        let out = rig.dir + "/converted"
        let good = try Sys.wyrcan(["convert", "\(rig.repository):signed", "--verify-key", rig.dir + "/k1.pub", "--insecure-registry", rig.registry.host, "-o", out])
        #expect(good.status == 0 && good.stderr.contains("signed by key k1"), "\(good.stderr)")
        #expect(FileManager.default.fileExists(atPath: out + "/kernel"))
        let refusedOut = rig.dir + "/refused"
        let refused = try Sys.wyrcan(["convert", "\(rig.repository):unsigned", "--verify-key", rig.dir + "/k1.pub", "--insecure-registry", rig.registry.host, "-o", refusedOut])
        #expect(refused.status == 1 && refused.stderr.contains("no signature"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: refusedOut + "/kernel"))
        let layout = try Sys.wyrcan(["convert", "oci:\(rig.dir)/signed:small", "--verify-key", rig.dir + "/k1.pub", "-o", rig.dir + "/layout-out"])
        #expect(layout.status == 1 && layout.stderr.contains("signatures are checked for registry images only"), "\(layout.stderr)")
        let notAKey = try Sys.wyrcan(["verify", "\(rig.repository):signed", "--key", rig.dir + "/pass", "--insecure-registry", rig.registry.host])
        #expect(notAKey.status != 0 && notAKey.stderr.contains("--key \(rig.dir)/pass:"), "\(notAKey.stderr)")
    }
}

extension SignatureSystemTests {
    /// wyrcan-serve with `verify:` and `pin: true`: machines get the signed image by digest; a
    /// tag that moves to an unsigned image (or one carrying another image's signature) keeps
    /// its last good digest, reported in the log, /v1/hosts and /metrics; a host whose image
    /// never passed gets 503; the tag moving back to the signed image clears the report.
    @Test func wyrcanServeHandsOutOnlyVerifiedDigests() throws {
        let rig = try Self.rig()
        try rig.retag("release", as: "prod")
        let repo = rig.repository
        let server = try ServeSystemTests.Server(name: "pins", inventory: """
            releases:
              stable: {kernel: wyrcan/1/wyrcan.kernel, initrd: wyrcan/1/wyrcan.initrd}
            defaults: {release: stable, image: "\(repo):prod", insecure: ["\(rig.registry.host)"]}
            groups:
              signed: {verify: ["\(rig.dir)/k1.pub"]}
            hosts:
              "52:54:00:00:00:01": {group: signed}
              "52:54:00:00:00:02": {group: signed, image: "\(repo):unsigned"}
              "52:54:00:00:00:03": {image: "\(repo):unsigned", pin: true}
            unknown: deny

            """, extra: ["--resolve-interval", "1"])
        try Sys.waitFor("the first pin") { server.process.output.contains("images pinned (start)") }
        // (The host's iPXE script: what a machine fetches, so /v1/hosts records what it was given.)
        func script(_ mac: String) throws -> String { try Sys.sh("curl -s -w '\\n%{http_code}' 'http://127.0.0.1:\(server.port)/ipxe?mac=\(mac)'").stdout }
        // (The image tagged :signed is signed as :signed, so it could not be served as :prod.)
        let signed = "\(repo)@\(rig.digests["release"]!)"
        func gives(_ text: String, _ image: String) -> Bool { text.contains("wyr.img=\(image) ") || text.contains("wyr.img=\(image)\n") }
        let first = try script("52:54:00:00:00:01")
        #expect(gives(first, signed), "\(first)\n\(server.process.output)")
        let refused = try script("52:54:00:00:00:02")
        #expect(refused.hasPrefix("\(repo):unsigned is not served: ") && refused.contains("no signature") && refused.hasSuffix("\n503"), "\(refused)")
        // pin: true without verify: the tag's digest, unsigned or not.
        let pinnedOnly = try script("52:54:00:00:00:03")
        #expect(gives(pinnedOnly, "\(repo)@\(rig.digests["unsigned"]!)"), "\(pinnedOnly)")

        let pixiecore = try Sys.sh("curl -s http://127.0.0.1:\(server.port)/v1/boot/52:54:00:00:00:01").stdout
        #expect(pixiecore.contains("wyr.img=\(signed)"), "\(pixiecore)")

        func count(_ text: String) -> Int { server.process.output.components(separatedBy: text).count - 1 }
        for (moved, found) in [("unsigned", "no signature"), ("copied", "a valid signature for another image")] {
            try rig.retag(moved, as: "prod")
            let (reloads, refusals) = (count("images pinned (reload)"), count("\(repo):prod (linux/amd64): not served: "))
            kill(server.process.process.processIdentifier, SIGHUP)
            try Sys.waitFor("the reload's pins") { count("images pinned (reload)") > reloads }
            #expect(gives(try script("52:54:00:00:00:01"), signed), "after moving prod to \(moved)")
            let hosts = try JSONSerialization.jsonObject(with: Data(try Sys.sh("curl -s http://127.0.0.1:\(server.port)/v1/hosts").stdout.utf8)) as? [String: Any]
            let first = (hosts?["hosts"] as? [[String: Any]])?.first { $0["mac"] as? String == "52:54:00:00:00:01" }
            let pin = (first?["pins"] as? [[String: Any]])?.first
            #expect(pin?["state"] as? String == "held" && pin?["digest"] as? String == rig.digests["release"] && (pin?["problem"] as? String)?.contains(found) == true, "\(String(describing: first))")
            #expect((first?["given"] as? [String]) == [signed], "\(String(describing: first))")
            #expect(count("\(repo):prod (linux/amd64): not served: ") > refusals, "\(server.process.output)")
        }
        let metrics = try Sys.sh("curl -s http://127.0.0.1:\(server.port)/metrics").stdout
        #expect(metrics.contains("wyrcan_image_pins{state=\"held\"} 1\n") && metrics.contains("wyrcan_image_pin_failures_total{image=\"\(repo):prod\"} "), "\(metrics)")

        // A newly signed image under the tag: the next interval's check (no reload) moves every
        // answer to it.
        try rig.retag("release2", as: "prod")
        let next = "\(repo)@\(rig.digests["release2"]!)"
        try Sys.waitFor("the interval's check") { server.process.output.contains("prod (linux/amd64): moved from \(rig.digests["release"]!) to \(rig.digests["release2"]!), signed by key k1") }
        #expect(gives(try script("52:54:00:00:00:01"), next))
        let metricsAfter = try Sys.sh("curl -s http://127.0.0.1:\(server.port)/metrics").stdout
        #expect(metricsAfter.contains("wyrcan_image_pins{state=\"held\"} 0\n"), "\(metricsAfter)")
        server.process.stop()

        let check = try Sys.run(Sys.binary("wyrcan-serve"), ["check", server.dir + "/fleet.yaml"])
        #expect(check.status == 0 && check.stdout.contains("image pins: 2 host(s) verify signatures (keys: k1), 1 host(s) pin by digest only"), "\(check.stdout)\(check.stderr)")
    }
}

/// The boot agent under QEMU with out/verify/wyrcan.initrd (scripts/test builds it with
/// `--trust-key cosign-test=… --require-signatures`): it boots an image signed with that key and
/// refuses an unsigned one without any wyr.verify on the cmdline; a Wyrcan without keys refuses
/// `wyr.verify` naming one.
@Suite(.serialized) struct SignedBootSystemTests {
    final class Rig: @unchecked Sendable {
        let signatures: SignatureSystemTests.Rig
        let boot: BootSystemTests.Rig
        var guestRegistry: String { "10.0.2.2:\(signatures.registry.port)" }

        init() throws {
            guard FileManager.default.fileExists(atPath: Sys.root + "/out/verify/wyrcan.initrd") else {
                throw SysError("out/verify/wyrcan.initrd is missing: scripts/test builds it (scripts/build-initramfs --out out/verify --trust-key cosign-test=Tests/Fixtures/signatures/cosign-test.pub --require-signatures)")
            }
            signatures = try SignatureSystemTests.rig()
            boot = try BootSystemTests.rig()
            let key = Sys.fixtures + "/signatures/cosign-test"
            let images = [("test/signed-hello", "\(boot.dir)/hello:latest", true), ("test/hello", "\(boot.dir)/hello:latest", false),
                          ("test/wyrcan-verify", Sys.root + "/out/verify-oci:latest", true)]
            for (repository, source, sign) in images {
                var args = ["--policy", signatures.dir + "/policy-any.json", "--registries.d", signatures.dir + "/registries.d", "copy", "--quiet", "--dest-tls-verify=false"]
                // (The guest reaches the registry as 10.0.2.2: the signature names that reference.)
                if sign {
                    args += ["--sign-by-sigstore-private-key", key + ".private", "--sign-passphrase-file", key + ".passphrase",
                             "--sign-identity", "10.0.2.2:\(signatures.registry.port)/\(repository):latest"]
                }
                try Sys.succeeded(try Sys.run(signatures.skopeo, args + ["oci:\(source)", "docker://\(signatures.registry.host)/\(repository):latest"]), "skopeo copy \(repository)")
            }
        }

        func boot(_ name: String, cmdline: String, initrd: String = "verify/wyrcan.initrd", until: [String]) throws -> String {
            let console = "\(signatures.dir)/\(name).console"
            return try Sys.runUntil("/usr/bin/qemu-system-x86_64", BootSystemTests.Rig.qemuArguments(cmdline: cmdline, serial: "file:\(console)", initrd: initrd),
                                    console: console, until: until, timeout: 240)
        }
    }

    static let shared = SharedRig(build: { try Rig() }, server: { $0.signatures.registry.server })
    static func rig() throws -> Rig { try shared.get() }

    @Test(.timeLimit(.minutes(6)))
    func aBakedKeyBootsTheImageItSigned() throws {
        let rig = try Self.rig()
        let console = try rig.boot("signed", cmdline: "console=ttyS0 wyr.img=\(rig.guestRegistry)/test/signed-hello wyr.insecure=\(rig.guestRegistry)",
                                   until: ["WYRCAN-BOOT-MARKER cmdline=", "● Failure:"])
        #expect(console.contains("  signed by key cosign-test"), "console:\n\(console.suffix(3000))")
        #expect(BootSystemTests.marker(console) == "console=ttyS0", "console:\n\(console.suffix(3000))")
    }

    /// `--require-signatures` is baked in: no wyr.verify on the cmdline, still refused; once
    /// (a signature does not appear by retrying); reported.
    @Test(.timeLimit(.minutes(6)))
    func anUnsignedImageIsRefusedWithoutWyrVerify() throws {
        let rig = try Self.rig()
        let serve = try ServeSystemTests.Server(name: "signature-reports")
        let report = try ServeSystemTests.reportURL(port: serve.port, mac: "52:54:00:12:34:56")
        let console = try rig.boot("unsigned", cmdline: "console=ttyS0 wyr.img=\(rig.guestRegistry)/test/hello wyr.insecure=\(rig.guestRegistry) wyr.report=\(report)",
                                   until: ["● Rebooting", "WYRCAN-BOOT-MARKER"])
        #expect(console.contains("● Failure: \(rig.guestRegistry)/test/hello@sha256:"), "console:\n\(console.suffix(3000))")
        #expect(console.contains("no signature (no sha256-") && console.contains("it must be signed by key cosign-test"), "console:\n\(console.suffix(3000))")
        #expect(!console.contains("retrying in") && !console.contains("WYRCAN-BOOT-MARKER"), "console:\n\(console.suffix(3000))")
        let hosts = try Sys.sh("curl -s http://127.0.0.1:\(serve.port)/v1/hosts").stdout
        #expect(hosts.contains("\"stage\" : \"failure\"") && hosts.contains("no signature"), "\(hosts)")
    }

    /// A chain: stage 1 (keys baked, signatures required) checks the signed Wyrcan it chains to,
    /// which has the same keys baked in and checks the OS image in turn: a signed one boots, an
    /// unsigned one is refused by stage 2.
    @Test(.timeLimit(.minutes(10)), arguments: [true, false])
    func eachStageOfAChainVerifiesTheNext(signedOS: Bool) throws {
        let rig = try Self.rig()
        let os = signedOS ? "test/signed-hello" : "test/hello"
        let cmd = try Sys.run(Sys.binary("wyrcan-serve"), ["cmdline", "--image", "\(rig.guestRegistry)/test/wyrcan-verify",
            "--image", "\(rig.guestRegistry)/\(os)", "--stage-param", "wyr.insecure=\(rig.guestRegistry)", "--stage-param", "console=ttyS0"])
        #expect(cmd.status == 0, "\(cmd.stderr)")
        let console = try rig.boot(signedOS ? "chain-signed" : "chain-unsigned", cmdline: cmd.stdout.trimmingCharacters(in: .whitespacesAndNewlines),
                                   until: ["WYRCAN-BOOT-MARKER cmdline=", "● Rebooting"])
        let stages = console.components(separatedBy: "● Wyrcan ")
        #expect(stages.count - 1 == 2, "two Wyrcan stages ran; console:\n\(console.suffix(4000))")
        #expect(stages.count > 1 && stages[1].contains("signed by key cosign-test"), "stage 1 checked stage 2:\n\(console.suffix(4000))")
        // ... and told it to check its own image with the same key.
        #expect(stages.count > 1 && stages[1].contains("wyr.verify=cosign-test"), "console:\n\(console.suffix(4000))")
        if signedOS {
            #expect(stages.count > 2 && stages[2].contains("signed by key cosign-test"), "console:\n\(console.suffix(4000))")
            #expect(BootSystemTests.marker(console) == "console=ttyS0", "console:\n\(console.suffix(4000))")
        } else {
            #expect(stages.count > 2 && stages[2].contains("● Failure: \(rig.guestRegistry)/test/hello@sha256:") && stages[2].contains("no signature"),
                    "console:\n\(console.suffix(4000))")
        }
    }

    /// Keys come from the initramfs only: a Wyrcan without them cannot be told to use one.
    @Test(.timeLimit(.minutes(6)))
    func wyrVerifyNamesOnlyBakedKeys() throws {
        let rig = try Self.rig()
        let console = try rig.boot("no-keys", cmdline: "console=ttyS0 wyr.img=\(rig.guestRegistry)/test/signed-hello wyr.insecure=\(rig.guestRegistry) wyr.verify=cosign-test",
                                   initrd: "wyrcan.initrd", until: ["● Rebooting", "WYRCAN-BOOT-MARKER"])
        #expect(console.contains("● Failure: wyr.verify=cosign-test: no key cosign-test in this Wyrcan's initramfs (it holds: none); add it with scripts/build-initramfs --trust-key cosign-test=FILE"),
                "console:\n\(console.suffix(3000))")
    }
}
