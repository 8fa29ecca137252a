import ArgumentParser
import WyrcanChain

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check that a registry image is signed by a trusted key (sigstore/cosign signatures).",
        discussion: """
            Resolves REF to its manifest digest, fetches the signatures attached to that digest \
            (the sha256-<hex>.sig tag, as cosign, skopeo and podman write them) and accepts the \
            image when one of them is a valid signature by one of the --key files over a payload \
            naming exactly that digest and REF's repository. Every manifest and payload is \
            digest-checked; no transparency log is consulted. Prints the digest on stdout; exits \
            1 with one line naming the image, the keys and what was found otherwise.

            EXAMPLES
              wyrcan verify registry.example.com/os/debian:12 --key cosign.pub
              wyrcan verify 127.0.0.1:5000/test/hello --key site.pub --key backup.pub --insecure-registry 127.0.0.1:5000
            """)

    @Argument(help: "The image: a registry reference ([REGISTRY[:PORT]/]PATH[:TAG][@sha256:DIGEST]).")
    var image: String

    @Option(name: .customLong("key"), help: ArgumentHelp("A trusted public key, PEM (repeatable: any one of them must have signed).", valueName: "FILE"))
    var keys: [String] = []

    @OptionGroup var registry: RegistryArguments

    func run() throws {
        guard let verifier = try RegistryArguments.verifier(keyFiles: keys, option: "--key") else {
            throw ValidationError("give the public key(s) to trust with --key FILE")
        }
        let location = try ImageLocation(parsing: image)
        guard case .registry(let reference) = location else {
            throw ValidationError("\(image): signatures are checked for registry images only, not OCI layouts")
        }
        let options = try registry.options(for: location)
        do {
            let work = try FileSystem.temporaryDirectory(in: "/tmp", prefix: "wyrcan-verify")
            defer { FileSystem.removeTree(work) }
            let client = try RegistryClient(reference: reference, options: options, tokens: TokenCache())
            let resolved = try client.resolve()
            let (key, digest) = try verifier.verify(resolved, client: client, workDirectory: work)
            printError("● \(reference.registry)/\(reference.repository)@\(digest): signed by key \(key.name)")
            print(digest)
        } catch {
            printError("wyrcan: error: \(error)")
            throw ExitCode(1)
        }
    }
}
