import ArgumentParser
import Foundation
import WyrcanFleet

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate an inventory file offline (every host is rendered).",
        discussion: "Prints one line per problem as FILE:LINE: FIELD: REASON and exits 1, or a summary and exits 0.")

    @Argument(help: "The inventory YAML file.")
    var file: String

    func run() throws {
        do throws(InventoryErrors) {
            let inventory = try InventoryLoader.load(file)
            print("\(file): ok: \(inventory.releases.count) releases, \(inventory.groups.count) groups, \(inventory.hosts.count) hosts, unknown MACs: \(inventory.unknown.rawValue)")
            let secretive = inventory.hosts.keys.sorted().filter { mac in inventory.profile(for: mac).map { Inventory.holdsSecrets($0.0) } ?? false }
            let defaultsSecret = inventory.unknown == .default && Inventory.holdsSecrets(inventory.defaults)
            if !secretive.isEmpty || defaultsSecret {
                let names = secretive.prefix(5).map(\.description).joined(separator: ", ") + (secretive.count > 5 ? ", …" : "")
                print("\(file): \(secretive.count) host(s)\(defaultsSecret ? " and unknown MACs" : "") hold secrets (s3, secret: arguments)\(names.isEmpty ? "" : ": \(names)"); they get them from /v1/config over TLS only: serve with --https (and a certificate machines trust, or let them pin its key)")
            }
            if let pins = Self.pinSummary(inventory) { print("\(file): \(pins)") }
        } catch {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw ExitCode(1)
        }
    }

    /// How many hosts get images by digest, and with which keys (every key file was read).
    static func pinSummary(_ inventory: Inventory) -> String? {
        let profiles = inventory.hosts.keys.compactMap { inventory.profile(for: $0)?.0 }.filter(\.pinsImages)
        guard !profiles.isEmpty else { return nil }
        let verifying = profiles.filter { $0.verify != nil }
        let keys = Set(verifying.flatMap { $0.verify ?? [] }).compactMap { inventory.verifyKeys[$0]?.name }.sorted()
        return "image pins: \(verifying.count) host(s) verify signatures (keys: \(keys.joined(separator: ", "))), \(profiles.count - verifying.count) host(s) pin by digest only; wyrcan-serve resolves them at start, on reload and every --resolve-interval"
    }
}
