#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// The configuration the original Wyrcan stores in EFI NVRAM (`wyr.efi=write`), read back when
/// the cmdline names no image. Same variable, same JSON, so configs written by the original work.
public struct StoredConfig: Codable, Sendable, Equatable {
    /// `wyr.img`
    public var image: String?
    /// The `wyr.arg` values, in order.
    public var cmdline: [String]
    /// `wyr.net.*` as file name (with extension) → section → key → value.
    public var network: [String: [String: [String: String]]]
    /// `wyr.insecure` registries: Wyrcan's addition, written only when there are some, so that a
    /// stored config alone can boot from a plain-HTTP lab registry (the original ignores it).
    public var insecure: [String] = []

    public init(image: String?, cmdline: [String], network: [String: [String: [String: String]]], insecure: [String] = []) {
        self.image = image
        self.cmdline = cmdline
        self.network = network
        self.insecure = insecure
    }

    enum CodingKeys: String, CodingKey { case image, cmdline, network, insecure }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        image = try c.decodeIfPresent(String.self, forKey: .image)
        cmdline = try c.decodeIfPresent([String].self, forKey: .cmdline) ?? []
        network = try c.decodeIfPresent([String: [String: [String: String]]].self, forKey: .network) ?? [:]
        insecure = try c.decodeIfPresent([String].self, forKey: .insecure) ?? []
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(image, forKey: .image)
        try c.encode(cmdline, forKey: .cmdline)
        try c.encode(network, forKey: .network)
        if !insecure.isEmpty { try c.encode(insecure, forKey: .insecure) }
    }

    /// The config `wyr.efi=write` stores for these arguments; fails when the network config uses
    /// repeated keys or `@N` sections, which the original's format cannot hold.
    public init(args: WyrcanArgs) throws(CmdlineError) {
        guard let network = args.network.legacyMap else {
            throw .notRepresentable(what: "wyr.efi=write", reason: "repeated wyr.net keys or SECTION@N sections do not fit the EFI variable's format")
        }
        self.init(image: args.image?.description, cmdline: args.args, network: network, insecure: args.insecureRegistries)
        _ = try cmdlineText()  // (what a later boot could not read back is not a config to store)
    }

    /// The equivalent cmdline, so a stored config goes through the same parser as a typed one.
    public func cmdlineText() throws(CmdlineError) -> String {
        var parts: [String] = []
        if let image { parts.append(try Self.render("wyr.img", image)) }
        for arg in cmdline { parts.append(try Self.render("wyr.arg", arg)) }
        for registry in insecure { parts.append(try Self.render("wyr.insecure", registry)) }
        for (fileName, sections) in network.sorted(by: { $0.key < $1.key }) {
            guard let file = NetworkConfig.File(fileName: fileName, legacySections: sections) else {
                throw .notRepresentable(what: "wyr.net from EFI", reason: "\(Message.quoted(fileName)) is not a networkd file name (NAME.network, .link or .netdev)")
            }
            for parameter in file.parameters { parts.append(try Self.render(parameter.key, parameter.value)) }
        }
        return parts.joined(separator: " ")
    }

    static func render(_ key: String, _ value: String) throws(CmdlineError) -> String {
        guard let text = KernelCmdline.render(key: key, value: value) else {
            throw .notRepresentable(what: "\(key) from EFI", reason: "the stored value contains a double quote")
        }
        return text
    }
}

/// efivarfs access for Wyrcan's variable: a 4-byte attribute word then the payload.
public struct EFIVariableStore: Sendable {
    public static let guid = "6987e713-a5ff-4ec2-ad55-c1fca471ed2d"
    public static let name = "Wyrcan"

    public var directory: String { variables.directory }
    let variables: EFIVariables
    public init(directory: String = EFIVariables.defaultDirectory) { variables = EFIVariables(directory: directory) }

    public var path: String { variables.path(Self.name, guid: Self.guid) }
    public var isAvailable: Bool { variables.isAvailable }

    public enum StoreError: Error, CustomStringConvertible, Sendable {
        case unavailable(String)
        case unreadable(String)
        case system(SystemError)
        case file(FileError)

        public var description: String {
            switch self {
            case .unavailable(let d): return "EFI variables are not available (\(d) is missing: not booted with EFI?)"
            case .unreadable(let why): return "the stored Wyrcan config is unreadable: \(why)"
            case .system(let e): return e.description
            case .file(let e): return e.description
            }
        }
    }

    public func read() throws(StoreError) -> StoredConfig? {
        let stored: [UInt8]?
        do throws(FileError) { stored = try variables.read(Self.name, guid: Self.guid) } catch { throw .file(error) }
        guard let data = stored else { return nil }
        guard !data.isEmpty else { throw .unreadable("no data") }
        do { return try JSONDecoder().decode(StoredConfig.self, from: Data(data)) } catch {
            throw .unreadable("not the JSON Wyrcan writes")
        }
    }

    /// Replaces the variable in one write (efivarfs needs attributes + data in a single write).
    public func write(_ config: StoredConfig) throws(StoreError) {
        guard isAvailable else { throw .unavailable(directory) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json: Data
        do { json = try encoder.encode(config) } catch { throw .unreadable("cannot encode") }
        try variables.write(Self.name, guid: Self.guid, Array(json), system: StoreError.system, file: StoreError.file)
    }

    public func clear() throws(StoreError) {
        guard FileSystem.exists(path) else { return }
        do throws(SystemError) { try LinuxSystem.clearImmutable(path) } catch { throw .system(error) }
        guard unlink(path) == 0 else { throw .system(SystemError(operation: "remove \(path)", code: errno)) }
    }
}
