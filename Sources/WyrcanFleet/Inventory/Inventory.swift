import WyrcanChain

/// The fleet inventory: which Wyrcan release, image, arguments, network and volumes each machine
/// boots with, by MAC. A host inherits `defaults` ← its `group` ← its own settings.
public struct Inventory: Sendable {
    public struct Release: Sendable, Equatable {
        public var kernel: String
        public var initrd: String
        /// The release as a UKI (kernel + initrd + cmdline in one EFI file) for UEFI HTTPS boot.
        public var efi: String? = nil
    }

    /// `boot`: netboot Wyrcan with the host's cmdline; `exit`: boot the local disk (iPXE exits,
    /// a UKI sets `BootNext`). The same values as `wyr.mode`.
    public typealias Mode = WyrcanArgs.Mode

    public enum UnknownPolicy: String, Sendable {
        /// Unknown MACs boot with `defaults`.
        case `default`
        /// Unknown MACs boot from disk.
        case exit
        /// Unknown MACs get HTTP 404 and no script.
        case deny
    }

    /// Settings shared by defaults, groups and hosts; nil/empty means "inherit".
    public struct Profile: Sendable {
        public var release: String?
        /// One image, or several: a chain of Wyrcan stages (first booted first) ending in the OS.
        public var images: [String]?
        /// Parameters for the final system, in order; an entry may hold several.
        public var args: [Argument] = []
        /// networkd files: FILE[.KIND] → section → key → values; a section may repeat.
        public var net: [NetworkConfig.File] = []
        public var volumes: [String] = []
        public var s3: [String] = []
        public var insecure: [String] = []
        public var platform: String?
        public var rescue: Bool?
        public var mode: Mode?
        /// Parameters for the Wyrcan kernel itself (console=ttyS0, …).
        public var kernelArgs: [String] = []
        /// Public key files (paths as loaded): the server hands out an image only once one of
        /// them signed it, pinned by digest. A list replaces the inherited one.
        public var verify: [String]?
        /// Hand out images by digest (`REF@sha256:…`), resolved by the server; `verify` implies it.
        public var pin: Bool?

        /// Whether the server resolves this profile's images to digests before handing them out.
        public var pinsImages: Bool { verify != nil || pin == true }

        public init(mode: Mode? = nil) { self.mode = mode }
    }

    /// An `args` entry: parameters written like a kernel cmdline; a secret one reaches the
    /// machine only over TLS (`/v1/config`), never in a script or a plain-HTTP answer.
    public struct Argument: Sendable, Equatable {
        public var text: String
        public var secret: Bool

        /// Why the argument cannot go on a cmdline as it is, or nil (a secret is not quoted back).
        public var problem: String? {
            let tokens = KernelCmdline.tokenize(text)
            guard tokens.contains(where: \.unterminatedQuote) || !tokens.allSatisfy(\.isValidUTF8) else { return nil }
            return "\(secret ? "the secret argument" : Message.quoted(text)) has an unbalanced double quote (or an unquoted character containing byte 0xA0)"
        }
    }

    public struct Host: Sendable {
        public var mac: MACAddress
        public var group: String?
        public var profile: Profile
        /// Where the host is defined, for messages.
        public var line: Int
    }

    public var source: String
    public var releases: [String: Release]
    public var defaults: Profile
    public var groups: [String: Profile]
    public var hosts: [MACAddress: Host]
    public var unknown: UnknownPolicy
    /// The keys `verify:` lists, by path, read when the file was loaded.
    public var verifyKeys: [String: TrustedKey] = [:]

    /// Whether a host with these settings holds secrets (S3 keys, `secret: true` arguments).
    /// The release `profile` boots: its own, or the only one defined.
    public func releaseName(for profile: Profile) -> String? {
        profile.release ?? (releases.count == 1 ? releases.keys.first : nil)
    }

    public static func holdsSecrets(_ profile: Profile) -> Bool { !profile.s3.isEmpty || profile.args.contains(where: \.secret) }

    /// The effective settings of a host (or of an unknown MAC under `unknown: default`).
    public func profile(for mac: MACAddress) -> (Profile, group: String?)? {
        if let host = hosts[mac] {
            var p = defaults
            if let g = host.group, let group = groups[g] { p = p.merged(with: group) }
            return (p.merged(with: host.profile), host.group)
        }
        return unknown == .default ? (defaults, nil) : nil
    }
}

extension Inventory.Profile {
    /// `self` overridden by `upper`: scalars replace, lists append, net files replace by name.
    public func merged(with upper: Inventory.Profile) -> Inventory.Profile {
        var p = self
        if let r = upper.release { p.release = r }
        if let i = upper.images { p.images = i }
        p.args += upper.args
        for file in upper.net {
            if let i = p.net.firstIndex(where: { $0.name == file.name && $0.kind == file.kind }) { p.net[i] = file } else { p.net.append(file) }
        }
        p.volumes += upper.volumes
        p.s3 += upper.s3
        p.insecure += upper.insecure.filter { !p.insecure.contains($0) }
        if let v = upper.platform { p.platform = v }
        if let v = upper.rescue { p.rescue = v }
        if let v = upper.mode { p.mode = v }
        p.kernelArgs += upper.kernelArgs
        if let v = upper.verify { p.verify = v }
        if let v = upper.pin { p.pin = v }
        return p
    }
}
