import WyrcanChain
#if canImport(Glibc)
import Glibc
#endif

/// One try at booting: network → parameters from the fleet server → the image (or the local
/// disk) → kexec. Returns only by throwing; each failure is reported (`wyr.report`) before it is.
final class BootAttempt {
    var args: WyrcanArgs
    var reporter: Reporter
    /// The interface that got an address first: its MAC names this machine to the server.
    var link: NetworkSetup.Link?
    /// The attempt's own requests (reports, parameters) share its connections; nil when libcurl
    /// could not make a handle (the fetches say so, reports are skipped).
    let client: HTTPClient?
    /// Secure Boot and lockdown: reported, and the explanation of a refused kexec.
    let security: BootSecurity
    /// The keys baked into the initramfs, and whether every image must be signed.
    let signatures: SignaturePolicy
    /// The keys the image's signature was checked with (passed on to a next Wyrcan stage).
    var verifiedWith: [String] = []

    init(args: WyrcanArgs, security: BootSecurity, signatures: SignaturePolicy) {
        self.args = args
        self.security = security
        self.signatures = signatures
        client = try? HTTPClient()
        reporter = Reporter(url: args.reportURL, client: client, security: security.summary)
    }

    func run() throws(BootAgent.BootFailure) {
        reporter.send("booting", image: args.image?.description)
        do throws(BootAgent.BootFailure) {
            try bringUpNetwork()
            try fetchParameters()
            if args.mode == .exit { try bootFromDisk() }
            guard let image = args.image else {
                throw BootAgent.BootFailure(description: "wyr.server=\(args.server ?? ""): the answer names no image (wyr.img) for this machine", retryable: false)
            }
            let artifacts = try pullAndConvert(image)
            try kexec(into: image, artifacts)
        } catch {
            reporter.send("failure", detail: error.description, image: args.image?.description)
            throw error
        }
    }

    private func bringUpNetwork() throws(BootAgent.BootFailure) {
        Console.stage("Bringing up the network")
        let up = NetworkSetup(config: args.network).bringUp()
        guard let first = up.first else {
            throw BootAgent.BootFailure(description: "no network link got an address (check the cable, DHCP, or wyr.net.* settings)")
        }
        link = first
        reporter.send("network", image: args.image?.description)
    }

    /// `wyr.extra_args_url` (what it always could add), then `wyr.server` (this machine's
    /// config, by MAC, over TLS), whose answer wins.
    private func fetchParameters() throws(BootAgent.BootFailure) {
        if let url = args.extraArgsURL { try merge(try fetchExtraArgs(url), from: "wyr.extra_args_url", trusted: false) }
        if args.server != nil {
            try merge(try fetchServerConfig(), from: "wyr.server", trusted: true)
            // What the server gave may be secret: NVRAM keeps it for anyone who reads it.
            if args.efi == .write {
                Console.detail("wyr.efi=write: not storing parameters from wyr.server in EFI (they may hold secrets); the UKI's wyr.server asks again at every boot")
                args.efi = nil
            }
        }
    }

    private func fetchServerConfig() throws(BootAgent.BootFailure) -> WyrcanArgs {
        let server: ConfigServer
        do { server = try ConfigServer(args: args) } catch { throw BootAgent.BootFailure(description: error.description, retryable: false) }
        guard let link, let mac = MACAddress(link.mac) else {
            throw BootAgent.BootFailure(description: "wyr.server=\(server.url): the link that got an address has no MAC address")
        }
        Console.stage("Getting this machine's parameters from \(server.configURL(for: mac))")
        let fetched: WyrcanArgs
        do throws(ConfigServerError) { fetched = try server.fetch(for: mac, client: try httpClient(for: "wyr.server=\(server.url)")) } catch {
            throw BootAgent.BootFailure(description: error.description, retryable: error.isTransient, retryAfter: error.retryAfter)
        }
        // Reports go to the server the same way (its CA or key), when they go to it.
        if let url = fetched.reportURL, url.hasPrefix(server.url + "/") { reporter = Reporter(url: url, options: server.options, client: client, security: security.summary) }
        return fetched
    }

    /// `wyr.extra_args_url`: more parameters (S3 secrets, volumes), never printed. Any refusal
    /// is retried (the URL may be a service that is still starting).
    private func fetchExtraArgs(_ url: String) throws(BootAgent.BootFailure) -> WyrcanArgs {
        Console.stage("Getting extra parameters from \(url)")
        do throws(ConfigServerError) {
            let source = "wyr.extra_args_url=\(url)"
            return try ConfigServer.fetchAnswer(url, client: try httpClient(for: source), source: source)
        } catch {
            let retryable = if case .refused = error { true } else { error.isTransient }
            throw BootAgent.BootFailure(description: error.description, retryable: retryable, retryAfter: error.retryAfter)
        }
    }

    /// The attempt's client (or, when libcurl could not make one at the start, its reason now).
    private func httpClient(for source: String) throws(ConfigServerError) -> HTTPClient {
        if let client { return client }
        do { return try HTTPClient() } catch { throw .transport(source: source, trust: "", error) }
    }

    private func merge(_ fetched: WyrcanArgs, from source: String, trusted: Bool) throws(BootAgent.BootFailure) {
        do throws(CmdlineError) { try args.merge(fetched: fetched, trusted: trusted) } catch {
            throw BootAgent.BootFailure(description: "\(source): \(error.description)", retryable: false)
        }
        if reporter.url == nil, let url = args.reportURL { reporter = Reporter(url: url, client: client, security: security.summary) }
        Console.detail("\(fetched.image.map { "image \($0), " } ?? "")\(fetched.args.count) wyr.arg(s), \(fetched.s3.count) S3 alias(es), \(fetched.volumes.count) volume(s) merged")
    }

    /// `wyr.mode=exit`: the next boot from the local disk (EFI `BootNext`), now.
    private func bootFromDisk() throws(BootAgent.BootFailure) -> Never {
        Console.stage("This machine boots from its local disk")
        let manager = EFIBootManager()
        do throws(EFIBootManager.BootManagerError) {
            let entry = try manager.diskEntry()
            try manager.setBootNext(entry.number)
            Console.detail("BootNext = \(entry.name) (\(Message.quoted(entry.description, limit: 60)))")
            reporter.send("exit", detail: "BootNext=\(entry.name)")
        } catch {
            throw BootAgent.BootFailure(description: "wyr.mode=exit: \(error.description)", retryable: false)
        }
        BootAgent.rebootAfter(seconds: 1)
    }
}
