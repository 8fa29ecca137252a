import ArgumentParser
import Foundation
import Logging
import WyrcanChain
import WyrcanFleet
import WyrcanHTTP

struct Render: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print what one machine would get from the server.",
        discussion: """
            EXAMPLES
              wyrcan-serve render --config fleet.yaml --mac 52:54:00:12:34:56
              wyrcan-serve render --config fleet.yaml --mac 5254.0012.3456 --format cmdline
              wyrcan-serve render --config fleet.yaml --mac 52:54:00:12:34:59 --format config --cert tls.crt

            A host that holds secrets (s3, secret: arguments) gets them only from /v1/config over
            TLS (--format config); its script and cmdline carry wyr.server= and wyr.server_pin= of
            the HTTPS listener (--server-url, and the key of --cert) instead.

            For a host with pin: or verify:, its images are resolved and checked against the
            registry, as the server does (--registry-ca, --registry-auth).
            """)

    @Option(help: "The inventory YAML file.")
    var config: String

    @Option(help: "The machine's MAC address (any notation).")
    var mac: String

    @Option(help: "ipxe (the per-host script), cmdline, json (Pixiecore API form), or config (/v1/config over TLS).")
    var format: String = "ipxe"

    @Option(help: "The server's URL as machines reach it.")
    var publicURL: String = "http://wyrcan-serve.example:8080"

    @Option(help: "The HTTPS listener's URL as machines reach it (wyr.server=).")
    var serverURL: String = "https://wyrcan-serve.example:8443"

    @OptionGroup var registries: PinningRegistryOptions

    @Option(help: ArgumentHelp("The HTTPS listener's certificate, for the key pin (wyr.server_pin=); without it the pin shown is a placeholder.", valueName: "PEM"))
    var cert: String?

    func run() throws {
        guard ["ipxe", "cmdline", "json", "config"].contains(format) else { throw ValidationError("--format must be ipxe, cmdline, json or config") }
        let inventory: Inventory
        do throws(InventoryErrors) { inventory = try InventoryLoader.load(config) } catch {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw ExitCode(1)
        }
        var server = BootServer(store: InventoryStore(fixed: inventory, logger: .init(label: "render")), state: FleetState(), assets: AssetHandler(root: "/nonexistent"),
                                pinner: try pinner(inventory), tokens: try ReportTokens(secret: Array(repeating: 0, count: 32), allowUnauthenticated: false),
                                publicURL: publicURL, logger: .init(label: "render"))
        server.tls = TLSListener(port: 0, pin: try pin(), publicURL: serverURL)
        let path = ["ipxe": "/ipxe", "cmdline": "/cmdline", "json": "/v1/boot/\(mac)", "config": "/v1/config/\(mac)"][format]!
        let request = HTTPServerRequest(method: "GET", path: path, query: [("mac", mac)], headers: [:], body: [], isTLS: format == "config")
        let response = server.handle(request)
        guard case .bytes(let body) = response.body else { throw ExitCode(1) }
        let text = String(decoding: body, as: UTF8.self)
        guard response.status == 200 else {
            FileHandle.standardError.write(Data("wyrcan-serve: \(text)".utf8))
            throw ExitCode(1)
        }
        print(text, terminator: text.hasSuffix("\n") ? "" : "\n")
    }

    /// For a host with `pin:`/`verify:`, its images resolved and checked as the server does.
    func pinner(_ inventory: Inventory) throws -> ImagePinner {
        // (Its log lines go to stderr: stdout is the answer.)
        let logger = Logger(label: "render", factory: { StreamLogHandler.standardError(label: $0) })
        let pinner = try registries.pinner(logger: logger, retry: .once)
        defer { FileSystem.removeTree(pinner.workDirectory) }
        guard let m = MACAddress(mac), inventory.profile(for: m)?.0.pinsImages == true else { return pinner }
        // Only this host's images: an inventory of it alone.
        var one = inventory
        one.hosts = inventory.hosts.filter { $0.key == m }
        if !one.hosts.isEmpty { one.unknown = .deny }
        pinner.refresh(one, reason: "render")
        return pinner
    }

    /// The pin of --cert's key, or a placeholder of the right shape.
    func pin() throws -> String {
        guard let cert else { return ConfigEndpoint.placeholderPin }
        let pem: String
        do { pem = try String(contentsOfFile: cert, encoding: .utf8) } catch { throw ValidationError("--cert \(cert): cannot read it") }
        do throws(CryptoError) { return try PublicKeyPin.of(certificatePEM: pem) } catch {
            throw ValidationError("--cert \(cert): not a PEM certificate")
        }
    }
}
