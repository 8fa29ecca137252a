import Foundation
import WyrcanChain

/// Each served script or config starts a boot: it gets an id, and its `wyr.report` URL carries
/// `?boot=ID&token=T` with T = HMAC-SHA256(secret, "MAC|ID") — so a report can only come from a
/// machine that was served that boot (the secret is in the state store, shared by replicas).
/// Answers are rendered (and cached) with markers in place of the id and token; `fill` puts in a
/// fresh boot's.
struct ReportTokens: Sendable {
    let secret: [UInt8]
    /// Reports without a token are taken too (the spelling before tokens; boots are not told apart).
    let allowUnauthenticated: Bool

    static let bootMarker = "WYRCAN-BOOT-ID"
    static let tokenMarker = "WYRCAN-REPORT-TOKEN"

    /// `BASE/v1/report/MAC?boot=…&token=…` with the markers.
    static func urlTemplate(base: String, mac: MACAddress) -> String {
        "\(base)/v1/report/\(mac)?boot=\(bootMarker)&token=\(tokenMarker)"
    }

    /// A new boot id: 16 hex digits.
    static func newBoot() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<8).map { _ in UInt8.random(in: 0...255, using: &generator) }.hexString
    }

    func token(mac: MACAddress, boot: String) -> String {
        let mac = (try? HMAC.sha256(key: secret, message: Array("\(mac)|\(boot)".utf8))) ?? []
        return Array(mac.prefix(16)).hexString
    }

    /// `text` with the markers replaced by `boot`'s id and token (nothing to do without them).
    func fill(_ text: String, mac: MACAddress, boot: String) -> String {
        guard text.contains(Self.bootMarker) else { return text }
        return text.replacingOccurrences(of: Self.bootMarker, with: boot)
            .replacingOccurrences(of: Self.tokenMarker, with: token(mac: mac, boot: boot))
    }

    /// Why a report's `boot`/`token` are not accepted, or nil (with the boot id to file it under).
    func check(mac: MACAddress, boot: String?, token: String?) -> Result<String, ReportRefusal> {
        guard let boot, let token else {
            return allowUnauthenticated ? .success("") : .failure(.init(reason: "a report needs the boot= and token= its wyr.report URL carries (or serve with --allow-unauthenticated-reports)"))
        }
        guard boot.count == 16, boot.allSatisfy(\.isHexDigit), Self.constantTimeEqual(Array(token.utf8), Array(self.token(mac: mac, boot: boot).utf8)) else {
            return .failure(.init(reason: "the token is not this host's for this boot"))
        }
        return .success(boot)
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

struct ReportRefusal: Error, Sendable {
    var reason: String
}
