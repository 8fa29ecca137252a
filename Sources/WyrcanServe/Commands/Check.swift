import ArgumentParser
import Foundation

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
        } catch {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw ExitCode(1)
        }
    }
}
