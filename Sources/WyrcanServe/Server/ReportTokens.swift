import Foundation
import Synchronization
import WyrcanChain

/// Each served script or config starts a boot: it gets an id, and its `wyr.report` URL carries
/// `?boot=ID&token=T` with T = HMAC-SHA256(secret, "MAC|ID") — so a report can only come from a
/// machine that was served that boot (the secret is in the state store, shared by replicas).
/// Answers are rendered (and cached) with markers in place of the id and token; `fill` puts in a
/// fresh boot's.
struct ReportTokens: Sendable {
    /// The secret, prepared once (a token per answer must cost little).
    private let key: HMACKey
    /// Reports without a token are taken too (the spelling before tokens; boots are not told apart).
    let allowUnauthenticated: Bool

    init(secret: [UInt8], allowUnauthenticated: Bool) throws(CryptoError) {
        key = try HMACKey(secret)
        self.allowUnauthenticated = allowUnauthenticated
    }

    static let bootMarker = "WYRCAN-BOOT-ID"
    private static let bootCounter = Atomic<UInt16>(UInt16.random(in: 0...UInt16.max))
    static let tokenMarker = "WYRCAN-REPORT-TOKEN"

    /// `BASE/v1/report/MAC?boot=…&token=…` with the markers.
    static func urlTemplate(base: String, mac: MACAddress) -> String {
        "\(base)/v1/report/\(mac)?boot=\(bootMarker)&token=\(tokenMarker)"
    }

    /// A new boot id: 16 hex digits, the time it was served (milliseconds, 12 digits) and 4
    /// random ones — so that when the boot began is known without writing anything per answer.
    static func newBoot(at milliseconds: Int64 = StoredReport.now()) -> String {
        let time = UInt64(milliseconds & 0xFFFF_FFFF_FFFF)
        // (A counter, not random bytes: only uniqueness is needed — the token authenticates —
        // and a getrandom call per answer shows in the script rate.)
        let random = UInt64(bootCounter.wrappingAdd(1, ordering: .relaxed).newValue)
        let bytes = (0..<8).map { i in UInt8(truncatingIfNeeded: ((time << 16) | random) >> (56 - 8 * UInt64(i))) }
        return bytes.hexString
    }

    /// When the boot `boot` was served (milliseconds since 1970).
    static func servedTime(of boot: String) -> Int64? {
        boot.count == 16 ? Int64(boot.prefix(12), radix: 16) : nil
    }

    func token(mac: MACAddress, boot: String) -> String {
        let mac = (try? key.sha256(Array("\(mac)|\(boot)".utf8))) ?? []
        return Array(mac.prefix(16)).hexString
    }

    /// `text` with the markers replaced by `boot`'s id and token (nothing to do without them).
    /// (Bytes: this runs for every script served, and Foundation's string search is slow.)
    func fill(_ text: String, mac: MACAddress, boot: String) -> String {
        let bytes = Array(text.utf8)
        let bootMarker = Array(Self.bootMarker.utf8), tokenMarker = Array(Self.tokenMarker.utf8)
        let replacements = [(bootMarker, Array(boot.utf8)), (tokenMarker, Array(token(mac: mac, boot: boot).utf8))]
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 32)
        bytes.withUnsafeBufferPointer { buffer in
            var i = 0
            while i < buffer.count {
                // (Both markers start with 'W'.)
                guard let at = buffer[i...].firstIndex(of: UInt8(ascii: "W")) else {
                    out.append(contentsOf: buffer[i...])
                    break
                }
                out.append(contentsOf: buffer[i..<at])
                if let (marker, value) = replacements.first(where: { Self.occurs($0.0, in: buffer, at: at) }) {
                    out += value
                    i = at + marker.count
                } else {
                    out.append(buffer[at])
                    i = at + 1
                }
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func occurs(_ needle: [UInt8], in haystack: UnsafeBufferPointer<UInt8>, at i: Int) -> Bool {
        i + needle.count <= haystack.count && haystack[i..<(i + needle.count)].elementsEqual(needle)
    }

    /// Why a report's `boot`/`token` are not accepted, or nil (with the boot id to file it under).
    func check(mac: MACAddress, boot: String?, token: String?) -> Result<String, ReportRefusal> {
        guard let boot, let token else {
            return allowUnauthenticated ? .success("") : .failure(.init(reason: "a report needs the boot= and token= its wyr.report URL carries (or serve with --allow-unauthenticated-reports)"))
        }
        let expected = self.token(mac: mac, boot: boot)
        guard boot.count == 16, boot.allSatisfy(\.isHexDigit), expected.count == 32, Self.constantTimeEqual(Array(token.utf8), Array(expected.utf8)) else {
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
