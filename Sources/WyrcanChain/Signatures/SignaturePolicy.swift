/// Which signatures a Wyrcan boot demands: the keys baked into its initramfs
/// (`scripts/build-initramfs --trust-key NAME=FILE` → `/etc/wyrcan/keys/NAME.pub`, as trusted as
/// Wyrcan itself; never from the cmdline), and whether every image must be signed
/// (`--require-signatures` → `/etc/wyrcan/require-signatures`, which no cmdline can turn off).
public struct SignaturePolicy: Sendable {
    public static let keyDirectory = "/etc/wyrcan/keys"
    public static let requireFile = "/etc/wyrcan/require-signatures"

    public var keys: [TrustedKey]
    public var required: Bool

    public init(keys: [TrustedKey], required: Bool) {
        self.keys = keys
        self.required = required
    }

    /// The baked keys (`*.pub`, by name) and the policy file.
    public static func load(keyDirectory: String = keyDirectory, requireFile: String = requireFile) throws(FileError) -> SignaturePolicy {
        let names = ((try? FileSystem.list(keyDirectory)) ?? []).filter { $0.hasSuffix(".pub") }.sorted()
        var keys: [TrustedKey] = []
        for name in names { keys.append(try TrustedKey.load(file: "\(keyDirectory)/\(name)")) }
        return SignaturePolicy(keys: keys, required: FileSystem.exists(requireFile))
    }

    /// The verifier for this boot: the keys `wyr.verify` names, else all baked keys when
    /// signatures are required; nil when nothing asks for a check.
    public func verifier(names: [String]) throws(SignatureError) -> ImageSignatureVerifier? {
        if names.isEmpty {
            guard required else { return nil }
            guard !keys.isEmpty else { throw .policy("this Wyrcan requires signed images but holds no key: rebuild it with scripts/build-initramfs --trust-key NAME=FILE") }
            return ImageSignatureVerifier(keys: keys)
        }
        var chosen: [TrustedKey] = []
        for name in names {
            guard let key = keys.first(where: { $0.name == name }) else {
                let held = keys.isEmpty ? "none" : keys.map(\.name).joined(separator: ", ")
                throw .policy("wyr.verify=\(name): no key \(name) in this Wyrcan's initramfs (it holds: \(held)); add it with scripts/build-initramfs --trust-key \(name)=FILE")
            }
            chosen.append(key)
        }
        return ImageSignatureVerifier(keys: chosen)
    }
}
