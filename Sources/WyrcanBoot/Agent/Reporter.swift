import WyrcanChain
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Posts boot progress to `wyr.report=URL` (wyrcan-serve's `/v1/report/<mac>`). Best effort:
/// a report that cannot be delivered never stops a boot.
struct Reporter {
    let url: String?
    /// The CA (or key pin) the report server is trusted with: the config server's, when the
    /// report goes to it.
    var options = HTTPOptions()
    let client: HTTPClient?
    /// Secure Boot and lockdown (`BootSecurity.summary`), sent with every report.
    let security: String

    struct Report: Encodable {
        var stage: String
        var detail: String?
        var image: String?
        var security: String
    }

    init(url: String?, options: HTTPOptions = HTTPOptions(), client: HTTPClient?, security: String) {
        self.url = url
        self.client = client
        self.security = security
        self.options = options
        self.options.timeoutSeconds = 5
    }

    func send(_ stage: String, detail: String? = nil, image: String? = nil) {
        guard let url, let client, let body = try? JSONEncoder().encode(Report(stage: stage, detail: detail, image: image, security: security)) else { return }
        let request = HTTPRequest("POST", url: url, headers: ["Content-Type: application/json"], body: Array(body), options: options)
        _ = try? client.send(request)
    }
}
