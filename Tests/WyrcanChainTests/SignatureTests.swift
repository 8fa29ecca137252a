import Foundation
import Testing
@testable import WyrcanChain

/// Sigstore signature checks against test vectors made with the openssl command line
/// (Tests/Fixtures/signatures/README.md); the system tests check signatures made by skopeo.
@Suite struct SignatureTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().path + "/Fixtures/signatures"
    static let digest = try! Digest(parsing: "sha256:45488e7e4c02e9789f48fca5193d8511014b40ec312ec5db2136af129a94d7c4")
    static let reference = try! Reference(parsing: "registry.example/os/debian:12")

    static func key(_ name: String) throws -> TrustedKey { try TrustedKey.load(file: "\(fixtures)/\(name).pub") }

    static func signature(_ payload: String, by key: String) throws -> ImageSignature {
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: "\(fixtures)/\(payload).json")))
        return ImageSignature(payload: bytes, signature: try String(contentsOfFile: "\(fixtures)/\(payload).\(key).sig", encoding: .utf8))
    }

    @Test(arguments: [("p256", SignatureKey.Kind.ecdsaP256), ("p384", .ecdsaP384), ("ed25519", .ed25519), ("rsa", .rsa)])
    func eachKindOfKeyChecksItsSignatures(name: String, kind: SignatureKey.Kind) throws {
        let key = try Self.key(name)
        #expect(key.name == name && key.key.kind == kind)
        let verifier = ImageSignatureVerifier(keys: [key])
        #expect(try verifier.check([Self.signature("good", by: name)], digest: Self.digest, reference: Self.reference).name == name)
        // Another key's signature over the same payload is not this key's.
        let other = name == "p256" ? "rsa" : "p256"
        #expect(throws: SignatureError.self) { try verifier.check([Self.signature("good", by: other)], digest: Self.digest, reference: Self.reference) }
    }

    @Test func keysWeCannotTrustAreRefusedWhenLoaded() {
        for name in ["rsa1024", "p521"] {
            #expect(throws: FileError.self) { try Self.key(name) }
        }
        #expect(throws: FileError.self) { try TrustedKey.load(file: "\(Self.fixtures)/good.json") }
    }

    /// Each way a signature can fail to vouch for the image is named; the first acceptable one
    /// among several wins.
    @Test func aSignatureVouchesOnlyForItsDigestAndRepository() throws {
        let verifier = ImageSignatureVerifier(keys: [try Self.key("rsa"), try Self.key("p256")])
        func findings(_ signatures: [ImageSignature], reference: Reference = Self.reference) -> [SignatureError.Finding] {
            do {
                _ = try verifier.check(signatures, digest: Self.digest, reference: reference)
                return []
            } catch {
                guard case .rejected(_, let keys, let findings) = error else { return [] }
                #expect(keys == ["rsa", "p256"])
                return findings
            }
        }
        let otherDigest = try Digest(parsing: "sha256:0000000000000000000000000000000000000000000000000000000000000001")
        #expect(findings([try Self.signature("other-digest", by: "p256")]) == [.otherDigest(otherDigest)])
        #expect(findings([try Self.signature("other-repository", by: "p256")]) == [.otherReference("registry.example/os/ubuntu:24.04")])
        #expect(findings([try Self.signature("wrong-type", by: "p256")]) == [.payload(.wrongType("atomic container signature"))])
        var edited = try Self.signature("good", by: "p256")
        edited.payload[edited.payload.count - 3] = UInt8(ascii: "X")
        #expect(findings([edited]) == [.noTrustedKey])
        #expect(findings([ImageSignature(payload: edited.payload, signature: "%%%")]) == [.badEncoding])
        // The same good signature seen from another repository (a signature copied to it).
        #expect(findings([try Self.signature("good", by: "p256")], reference: try Reference(parsing: "registry.example/os/other:12")) == [.otherReference("registry.example/os/debian:12")])
        // Signed as :12, asked for as :13 (a tag moved to another signed image): refused; asked
        // for by digest: the digest pins it.
        #expect(findings([try Self.signature("good", by: "p256")], reference: try Reference(parsing: "registry.example/os/debian:13")) == [.otherReference("registry.example/os/debian:12")])
        #expect(findings([try Self.signature("good", by: "p256")], reference: try Reference(parsing: "registry.example/os/debian@\(Self.digest)")) == [])
        // cosign names the repository without a tag: any tag of it.
        #expect(ImageSignatureVerifier.identityMatches("registry.example/os/debian", try Reference(parsing: "registry.example/os/debian:13")))
        #expect(!ImageSignatureVerifier.identityMatches("registry.example:5000/os/debian", try Reference(parsing: "registry.example/os/debian:13")))
        // Among several, the good one is accepted.
        let accepted = try verifier.check([try Self.signature("other-digest", by: "p256"), try Self.signature("good", by: "p256")],
                                          digest: Self.digest, reference: Self.reference)
        #expect(accepted.name == "p256")
        let message = SignatureError.rejected(image: "registry.example/os/debian@\(Self.digest)", keys: ["rsa", "p256"],
                                              findings: [.noTrustedKey, .otherDigest(otherDigest)]).description
        #expect(message == "registry.example/os/debian@\(Self.digest): not signed by one of the keys rsa, p256: found 2 signature(s): signed by none of the keys; a valid signature for another image (\(otherDigest))")
    }

    /// The keys come from the initramfs; wyr.verify picks among them; a baked requirement
    /// applies with no wyr.verify at all.
    @Test func theBootPolicyUsesOnlyBakedKeys() throws {
        let dir = try freshTemporaryDirectory("signature-policy")
        try FileManager.default.createDirectory(atPath: dir + "/keys", withIntermediateDirectories: true)
        for name in ["p256", "rsa"] { try FileManager.default.copyItem(atPath: "\(Self.fixtures)/\(name).pub", toPath: "\(dir)/keys/\(name).pub") }
        let optional = try SignaturePolicy.load(keyDirectory: dir + "/keys", requireFile: dir + "/require")
        #expect(optional.keys.map(\.name) == ["p256", "rsa"] && !optional.required)
        #expect(try optional.verifier(names: []) == nil)
        #expect(try optional.verifier(names: ["rsa"])?.keyNames == ["rsa"])
        #expect(throws: SignatureError.self) { try optional.verifier(names: ["other"]) }
        do { _ = try optional.verifier(names: ["other"]) } catch {
            #expect(error.description == "wyr.verify=other: no key other in this Wyrcan's initramfs (it holds: p256, rsa); add it with scripts/build-initramfs --trust-key other=FILE")
        }
        try "x".write(toFile: dir + "/require", atomically: true, encoding: .utf8)
        let required = try SignaturePolicy.load(keyDirectory: dir + "/keys", requireFile: dir + "/require")
        #expect(try required.verifier(names: [])?.keyNames == ["p256", "rsa"])
        let noKeys = try SignaturePolicy.load(keyDirectory: dir + "/none", requireFile: dir + "/require")
        #expect(throws: SignatureError.self) { try noKeys.verifier(names: []) }
    }

    @Test func wyrVerifyNamesKeysAndAServerCanOnlyAddSome() throws {
        var args = try WyrcanArgs(parsing: "wyr.img=r.io/os wyr.verify=site,backup wyr.verify=site")
        #expect(args.verifyKeys == ["site", "backup"])
        #expect(throws: CmdlineError.self) { try WyrcanArgs(parsing: "wyr.verify=site;rm") }
        #expect(throws: CmdlineError.self) { try WyrcanArgs(parsing: "wyr.verify=") }
        try args.merge(fetched: try WyrcanArgs(parsing: "wyr.verify=fleet"))
        #expect(args.verifyKeys == ["site", "backup", "fleet"])
        try args.merge(fetched: try WyrcanArgs(parsing: "wyr.verify=other"), trusted: false)
        #expect(args.verifyKeys == ["site", "backup", "fleet"])
        let plan = try BootPlan(cmdline: "wyr.img=r.io/os wyr.verify=site,backup")
        #expect(plan.text().contains("Verify:    the image must be signed by one of the keys site, backup (baked into the initramfs)"))
        #expect(plan.json().contains(#""verify" : ["#))
    }

    /// A stage that checked the next Wyrcan's signature makes that stage check its own image.
    @Test func aVerifiedChainPassesTheKeysOn() throws {
        let chained = try WyrcanArgs(parsing: "wyr.img=r.io/wyrcan wyr.arg=wyr.img=r.io/os")
        let next = try chained.nextCmdline(verifiedWith: ["site", "backup"])
        #expect(next.contains("wyr.verify=site,backup") && next.contains("wyr.depth=1"), "\(next)")
        #expect(try WyrcanArgs(parsing: next).verifyKeys == ["site", "backup"])
        #expect(!(try chained.nextCmdline()).contains("wyr.verify"))
        // The OS (no wyr.img after it) gets no Wyrcan parameters.
        let os = try WyrcanArgs(parsing: "wyr.img=r.io/os wyr.arg=quiet").nextCmdline(verifiedWith: ["site"])
        #expect(os == "quiet")
    }

    @Test func signatureTagsAreTheDigestsOwn() {
        #expect(RegistryClient.signatureTag(for: Self.digest) == "sha256-45488e7e4c02e9789f48fca5193d8511014b40ec312ec5db2136af129a94d7c4.sig")
    }
}
