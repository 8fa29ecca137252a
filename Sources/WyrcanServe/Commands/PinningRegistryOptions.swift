import ArgumentParser
import Logging
import WyrcanChain

/// How wyrcan-serve reaches registries to pin images (`pin:`, `verify:`): `serve` and `render`.
struct PinningRegistryOptions: ParsableArguments {
    @Option(help: ArgumentHelp("PEM bundle of CAs for registries reached over HTTPS, for pinned images (default: the system's).", valueName: "FILE"))
    var registryCA: String?

    @Option(help: ArgumentHelp("Registry credentials for pinned images: a Docker config.json / containers auth.json.", valueName: "FILE"))
    var registryAuth: String?

    /// A pinner with these settings; its signature payloads pass through a private directory.
    func pinner(logger: Logger, retry: RetryPolicy) throws -> ImagePinner {
        var options = RegistryOptions()
        options.retry = retry
        if let registryCA {
            guard FileSystem.exists(registryCA), !FileSystem.isDirectory(registryCA) else { throw ValidationError("--registry-ca \(registryCA): not a readable file") }
            options.caFile = registryCA
        }
        if let registryAuth {
            do throws(RegistryError) { try options.loadAuthFile(registryAuth) } catch { throw ValidationError("--registry-auth \(registryAuth): \(error.description)") }
        }
        let work: String
        do throws(FileError) { work = try FileSystem.temporaryDirectory(prefix: "wyrcan-serve-pins") } catch {
            throw ValidationError("cannot create a temporary directory: \(error.description)")
        }
        return ImagePinner(options: options, workDirectory: work, logger: logger)
    }
}
