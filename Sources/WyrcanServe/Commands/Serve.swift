import ArgumentParser
import Dispatch
import Foundation
import Logging
import WyrcanChain
import WyrcanFleet
import WyrcanHTTP

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve boot scripts, cmdlines and assets (the default command).",
        discussion: """
            ENDPOINTS
              GET  /boot.ipxe            bootstrap: chains to /ipxe?mac=${net0/mac}, retrying
              GET  /ipxe?mac=MAC         the host's iPXE script (also /ipxe/MAC)
              GET  /cmdline?mac=MAC      the host's Wyrcan cmdline
              GET  /v1/boot/MAC          {kernel, initrd, cmdline} for Pixiecore's API mode
              GET  /assets/PATH          files from --assets (HEAD, Range, ETag, sendfile)
              POST /v1/report/MAC        boot progress from Wyrcan (wyr.report=)
              GET  /v1/hosts             every known host with its last report
              GET  /metrics, /healthz

            TLS PROFILES (--https)
              modern       TLS 1.3 and TLS 1.2 with ECDHE + AEAD (GCM, ChaCha20) only
              uefi         modern plus TLS 1.2 DHE-RSA with AEAD (RFC 7919 ffdhe2048), which
                           UEFI firmware's HTTPS boot speaks (it has no ECDHE); no CBC, no RSA
                           key exchange: still forward-secret
              ipxe-compat  modern plus the TLS 1.2 RSA key exchange AES-CBC SHA1/SHA256 suites
                           that iPXE before 2.0 speaks (AES128-SHA256, AES256-SHA256, …)
            Debian's iPXE ROMs have no HTTPS at all: point them at the --http listener.

            The inventory is reloaded on SIGHUP and when the file changes; a file with errors is
            refused (the previous one keeps serving) and the errors are logged.

            PINNED AND SIGNED IMAGES (pin: true, verify: KEY.pub in the inventory)
            The server resolves each such image to its manifest digest for the host's platform,
            checks its sigstore signatures against the keys, and hands machines REF@sha256:…
            only. It checks again on every reload and every --resolve-interval; a tag that moved
            to an image that fails keeps its last good digest (logged, in /v1/hosts and
            /metrics). A host whose image never passed gets 503 and retries.

            EXAMPLE
              wyrcan-serve --config examples/fleet.yaml --assets out --http 0.0.0.0:8080 \\
                --https 0.0.0.0:8443 --tls-profile ipxe-compat --self-signed
            """)

    @Option(help: "The inventory YAML file.")
    var config: String

    @Option(help: "Directory served under /assets/ (Wyrcan kernels and initrds).")
    var assets: String

    @Option(help: ArgumentHelp("Plain-HTTP listener.", valueName: "ADDR:PORT"))
    var http: String?

    @Option(help: ArgumentHelp("HTTPS listener.", valueName: "ADDR:PORT"))
    var https: String?

    @Option(help: "TLS profile of the HTTPS listener: modern, uefi or ipxe-compat.")
    var tlsProfile: String = "modern"

    @Option(help: "PEM certificate (chain) for --https.")
    var cert: String?

    @Option(help: "PEM private key for --https.")
    var key: String?

    @Flag(help: "Generate a throw-away self-signed certificate for --https (demos only).")
    var selfSigned = false

    @Option(help: "Worker threads per listener.")
    var threads: Int = 4

    @Option(help: "Connections per listener (the open-files limit is raised to match).")
    var connections: Int = 16384

    @Option(help: ArgumentHelp("Connections one client address may hold at once per listener (0: no limit; a load balancer in front needs 0 or a large value).", valueName: "N"))
    var perAddressConnections: Int = 64

    @Option(help: "Base URL machines use to reach this server (default: from each request's Host header).")
    var publicURL: String?

    @Option(help: ArgumentHelp("The HTTPS listener's URL as machines reach it, for wyr.server= (default: https://HOST:PORT from each request's Host and the --https port).", valueName: "https://HOST[:PORT]"))
    var serverURL: String?

    @Option(help: "Seconds between checks of the inventory file for changes (0: only SIGHUP).")
    var watchInterval: Int = 2

    @Option(help: ArgumentHelp("Seconds between checks of pinned images' tags and signatures (0: on start and reload only).", valueName: "SECONDS"))
    var resolveInterval: Int = 300

    @OptionGroup var registries: PinningRegistryOptions

    @Option(help: ArgumentHelp("The state store: an SQLite file (created if missing) holding every boot report, each host's boots and the report tokens' secret.", valueName: "PATH"))
    var state: String = "wyrcan-serve.db"

    @Option(help: ArgumentHelp("Boots kept per host in the state store (older ones and their reports are removed).", valueName: "N"))
    var keepBoots: Int = 50

    @Option(help: ArgumentHelp("This server's name in stored reports (default: the host name).", valueName: "NAME"))
    var replica: String?

    @Flag(help: "Take reports without a boot token too (the spelling before tokens: any machine can report for any MAC).")
    var allowUnauthenticatedReports = false

    func validate() throws {
        if http == nil && https == nil { throw ValidationError("give --http ADDR:PORT and/or --https ADDR:PORT") }
        if https != nil && !selfSigned && (cert == nil || key == nil) { throw ValidationError("--https needs --cert and --key (or --self-signed)") }
        if TLSProfile(rawValue: tlsProfile) == nil { throw ValidationError("--tls-profile must be \(TLSProfile.allCases.map(\.rawValue).joined(separator: ", "))") }
        if threads < 1 || threads > 256 { throw ValidationError("--threads must be 1…256") }
        if connections < 16 || connections > 1 << 20 { throw ValidationError("--connections must be 16…1048576") }
        if perAddressConnections < 0 { throw ValidationError("--per-address-connections must be 0 (no limit) or more") }
        if let serverURL, !serverURL.hasPrefix("https://") || serverURL.contains(" ") || serverURL.contains("${") || serverURL.contains("?") {
            throw ValidationError("--server-url must be an https:// URL without spaces or a query")
        }
        if let https, https.hasSuffix(":0") { throw ValidationError("--https needs a port: machines are sent to it") }
        if keepBoots < 1 { throw ValidationError("--keep-boots must be 1 or more") }
        if resolveInterval < 0 { throw ValidationError("--resolve-interval must be 0 (start and reload only) or more seconds") }
        if serverURL != nil && https == nil { throw ValidationError("--server-url names the --https listener: give --https too") }
        if let publicURL, !(publicURL.hasPrefix("http://") || publicURL.hasPrefix("https://")) || publicURL.contains(" ") || publicURL.contains("${") {
            throw ValidationError("--public-url must be an http(s) URL without spaces")
        }
    }

    func run() throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        let logger = Logger(label: "wyrcan-serve")
        guard FileSystem.isDirectory(assets) else { throw ValidationError("--assets \(assets): not a directory") }
        let pinner = try registries.pinner(logger: logger, retry: RetryPolicy(attempts: 3, initialDelay: 1, maximumDelay: 4))
        let store: InventoryStore
        do throws(InventoryErrors) {
            store = try InventoryStore(path: config, logger: logger) { pinner.refresh($0, reason: "reload") }
        } catch {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw ExitCode(1)
        }
        Self.raiseOpenFilesLimit(to: 2 * connections + 256)
        let (fleet, tokens) = try openState(known: { store.inventory.hosts[$0] != nil }, logger: logger)
        var server = BootServer(store: store, state: fleet, assets: AssetHandler(root: assets), pinner: pinner, tokens: tokens, publicURL: publicURL, logger: logger)
        var listeners: [HTTPServer] = []
        do {
            if let https {
                let (host, port) = try Self.address(https)
                let (certPEM, keyPEM) = try selfSigned ? SelfSigned.generate() : (String(contentsOfFile: cert!, encoding: .utf8), String(contentsOfFile: key!, encoding: .utf8))
                let profile = TLSProfile(rawValue: tlsProfile)!
                let tls = HTTPServer.TLS(certificatePEM: certPEM, keyPEM: keyPEM, priorities: profile.priorities, dhParametersPEM: profile.dhParametersPEM)
                let pin: String
                do throws(CryptoError) { pin = try PublicKeyPin.of(certificatePEM: certPEM) } catch {
                    throw ValidationError("--cert \(cert ?? ""): not a PEM certificate (\(error))")
                }
                server.tls = TLSListener(port: port, pin: pin, publicURL: serverURL.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 })
                listeners.append(try HTTPServer(listenerConfiguration(host, port, tls: tls)) { [server] in server.handle($0) })
                logger.info("listening on https://\(host):\(port) (TLS profile \(profile.rawValue), key \(pin))")
            }
            if let http {
                let (host, port) = try Self.address(http)
                listeners.append(try HTTPServer(listenerConfiguration(host, port, tls: nil)) { [server] in server.handle($0) })
                logger.info("listening on http://\(host):\(listeners.last!.port)")
            }
        } catch let error as HTTPServerError {
            throw ValidationError(error.description)
        }
        logger.info("serving \(store.inventory.hosts.count) hosts from \(config), assets from \(assets)")

        let stop: @Sendable () -> Void = {
            logger.info("stopping")
            FileSystem.removeTree(pinner.workDirectory)
            Foundation.exit(0)
        }
        let signals = Self.handleSignals(reload: { store.reload(reason: "SIGHUP") }, stop: stop)
        let watch = watchInterval > 0 ? Self.repeating(every: watchInterval) { store.reloadIfChanged() } : nil
        // The first check runs while the server already answers (hosts that pin nothing boot).
        DispatchQueue.global().async { store.whileSteady { pinner.refresh($0, reason: "start") } }
        let resolve = resolveInterval > 0 ? Self.repeating(every: resolveInterval) { store.whileSteady { pinner.refresh($0, reason: "interval") } } : nil
        withExtendedLifetime((listeners, signals, watch, resolve)) { dispatchMain() }
    }

    /// The state store, the reports it holds, and the report tokens' secret.
    func openState(known: (MACAddress) -> Bool, logger: Logger) throws -> (FleetState, ReportTokens) {
        do throws(StateError) {
            let stateStore = try SQLiteStateStore(path: state, keepBoots: keepBoots)
            let fleet = FleetState(store: stateStore, replica: replica ?? ProcessInfo.processInfo.hostName)
            try fleet.restore(known: known)
            let secret = try stateStore.reportSecret()
            let tokens: ReportTokens
            do throws(CryptoError) { tokens = try ReportTokens(secret: secret, allowUnauthenticated: allowUnauthenticatedReports) } catch {
                throw StateError(operation: "report tokens", message: error.description)
            }
            logger.info("state in \(state) (SQLite): \(fleet.reportingHosts) hosts with reports")
            return (fleet, tokens)
        } catch {
            throw ValidationError("--state \(state): \(error.description)")
        }
    }

    /// SIGHUP reloads; SIGTERM and SIGINT stop. (The sources must be kept alive.)
    static func handleSignals(reload: @escaping @Sendable () -> Void, stop: @escaping @Sendable () -> Void) -> [DispatchSourceSignal] {
        [(SIGHUP, reload), (SIGTERM, stop), (SIGINT, stop)].map { number, handler in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number)
            source.setEventHandler(handler: handler)
            source.resume()
            return source
        }
    }

    static func repeating(every seconds: Int, _ body: @escaping @Sendable () -> Void) -> DispatchSourceTimer {
        let timer = DispatchSource.makeTimerSource()
        timer.schedule(deadline: .now() + .seconds(seconds), repeating: .seconds(seconds))
        timer.setEventHandler(handler: body)
        timer.resume()
        return timer
    }

    func listenerConfiguration(_ host: String, _ port: UInt16, tls: HTTPServer.TLS?) -> HTTPServer.Configuration {
        HTTPServer.Configuration(host: host, port: port, threads: threads, connectionLimit: connections,
                                 perAddressLimit: perAddressConnections, tls: tls)
    }

    /// Each connection is a file descriptor: the soft limit (often 1024) up to the hard one.
    static func raiseOpenFilesLimit(to wanted: Int) {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        let target = min(rlim_t(wanted), limit.rlim_max)
        if limit.rlim_cur < target {
            limit.rlim_cur = target
            _ = setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        }
    }

    static func address(_ text: String) throws -> (String, UInt16) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
            throw ValidationError("\(Message.quoted(text)) is not ADDR:PORT")
        }
        return (String(text[..<colon]), port)
    }
}

/// GnuTLS priority strings (Debian's libmicrohttpd uses GnuTLS), narrowest first.
enum TLSProfile: String, CaseIterable {
    case modern
    case uefi
    case ipxeCompat = "ipxe-compat"

    var priorities: String {
        let modern = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-RSA:+ECDHE-ECDSA"
        switch self {
        case .modern: return modern
        // UEFI firmware (edk2's TlsLib) offers no ECDHE: forward secrecy through DHE-RSA, still
        // AEAD only — no CBC, no RSA key exchange.
        case .uefi: return modern + ":+DHE-RSA"
        case .ipxeCompat: return modern + ":+AES-128-CBC:+AES-256-CBC:+SHA1:+SHA256:+RSA"
        }
    }

    /// DHE needs parameters for clients that name no group (edk2 names none).
    var dhParametersPEM: String? { self == .uefi ? HTTPServer.TLS.ffdhe2048PEM : nil }
}

/// A throw-away self-signed certificate, made with the openssl command (demos only).
enum SelfSigned {
    static func generate() throws -> (String, String) {
        let dir = try FileSystem.temporaryDirectory(prefix: "wyrcan-serve-tls")
        defer { FileSystem.removeTree(dir) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        p.arguments = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir + "/key.pem", "-out", dir + "/cert.pem",
                       "-days", "30", "-subj", "/CN=wyrcan-serve", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:10.0.2.2"]
        p.standardError = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw ValidationError("--self-signed: openssl req failed") }
        return (try String(contentsOfFile: dir + "/cert.pem", encoding: .utf8), try String(contentsOfFile: dir + "/key.pem", encoding: .utf8))
    }
}
