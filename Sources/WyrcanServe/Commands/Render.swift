import ArgumentParser
import Foundation
import WyrcanChain
import WyrcanHTTP

struct Render: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print what one machine would get from the server.",
        discussion: """
            EXAMPLES
              wyrcan-serve render --config fleet.yaml --mac 52:54:00:12:34:56
              wyrcan-serve render --config fleet.yaml --mac 5254.0012.3456 --format cmdline
            """)

    @Option(help: "The inventory YAML file.")
    var config: String

    @Option(help: "The machine's MAC address (any notation).")
    var mac: String

    @Option(help: "ipxe (the per-host script), cmdline, or json (Pixiecore API form).")
    var format: String = "ipxe"

    @Option(help: "The server's URL as machines reach it.")
    var publicURL: String = "http://wyrcan-serve.example:8080"

    func run() throws {
        guard ["ipxe", "cmdline", "json"].contains(format) else { throw ValidationError("--format must be ipxe, cmdline or json") }
        let inventory: Inventory
        do throws(InventoryErrors) { inventory = try InventoryLoader.load(config) } catch {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw ExitCode(1)
        }
        let server = BootServer(store: InventoryStore(fixed: inventory, logger: .init(label: "render")), state: FleetState(), assets: AssetHandler(root: "/nonexistent"),
                                publicURL: publicURL, logger: .init(label: "render"))
        let path = ["ipxe": "/ipxe", "cmdline": "/cmdline", "json": "/v1/boot/\(mac)"][format]!
        let request = HTTPServerRequest(method: "GET", path: path, query: [("mac", mac)], headers: [:], body: [])
        let response = server.handle(request)
        guard case .bytes(let body) = response.body else { throw ExitCode(1) }
        let text = String(decoding: body, as: UTF8.self)
        guard response.status == 200 else {
            FileHandle.standardError.write(Data("wyrcan-serve: \(text)".utf8))
            throw ExitCode(1)
        }
        print(text, terminator: text.hasSuffix("\n") ? "" : "\n")
    }
}
