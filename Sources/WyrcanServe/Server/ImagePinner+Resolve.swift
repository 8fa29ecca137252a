import Foundation
import WyrcanChain

/// One check: the tag's digest for the platform, and with keys, a signature by one of them.
extension ImagePinner {
    func resolve(_ request: PinRequest, keys: [String: TrustedKey]) -> Result<(Digest, String?), PinUnavailable> {
        func unavailable(_ text: String) -> Result<(Digest, String?), PinUnavailable> {
            .failure(PinUnavailable(image: request.image, problem: Self.serverHints(text)))
        }
        let reference: Reference
        var options = self.options
        do throws(ReferenceError) {
            reference = try Reference(parsing: request.image)
            options.platform = try Platform(parsing: request.platform)
        } catch {
            return unavailable(error.description)
        }
        if request.insecure { options.insecureRegistries = [reference.registry] }
        let client: RegistryClient
        let image: ResolvedImage
        do throws(RegistryError) {
            client = try RegistryClient(reference: reference, options: options)
            image = try client.resolve()
        } catch {
            return unavailable(error.description)
        }
        guard !request.keys.isEmpty else { return .success((image.topDigest, nil)) }
        // (A directory per check: two checks of one image must not share payload files.)
        let work: String
        do throws(FileError) { work = try FileSystem.temporaryDirectory(in: workDirectory, prefix: "check") } catch {
            return unavailable(error.description)
        }
        defer { FileSystem.removeTree(work) }
        let verifier = ImageSignatureVerifier(keys: request.keys.compactMap { keys[$0] })
        do throws(SignatureError) {
            let (key, digest) = try verifier.verify(image, client: client, workDirectory: work)
            return .success((digest, key.name))
        } catch {
            return unavailable(error.description)
        }
    }

    /// The registry client's advice names `wyrcan convert`'s options; the server's are others.
    static func serverHints(_ text: String) -> String {
        text.replacingOccurrences(of: "--insecure-registry HOST[:PORT] (wyr.insecure= at boot)", with: "insecure: [HOST[:PORT]] in the inventory")
            .replacingOccurrences(of: "--ca-file [HOST=]FILE", with: "wyrcan-serve --registry-ca FILE")
            .replacingOccurrences(of: "wyr.platform= / --platform", with: "platform: in the inventory")
    }
}
