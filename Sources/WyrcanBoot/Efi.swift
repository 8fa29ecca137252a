import ArgumentParser
import WyrcanChain

struct Efi: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show, write or clear the Wyrcan config stored in EFI NVRAM.",
        discussion: """
            The variable is Wyrcan-6987e713-a5ff-4ec2-ad55-c1fca471ed2d (the original Wyrcan's), \
            holding wyr.img, wyr.arg and wyr.net.* as JSON. The boot agent uses it when the \
            cmdline names no image.

            WARNING: some older machines have EFI firmware bugs that can brick them when a custom \
            variable is written. This is rare on servers, but writing carries that small risk.
            """,
        subcommands: [Show.self, Write.self, Clear.self])

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the stored config as a cmdline.")
        @Option(help: "efivarfs directory.") var efivars = "/sys/firmware/efi/efivars"
        func run() throws {
            do throws(EFIVariableStore.StoreError) {
                guard let stored = try EFIVariableStore(directory: efivars).read() else {
                    print("no Wyrcan config is stored")
                    return
                }
                print((try? stored.cmdlineText()) ?? "(stored config cannot be shown as a cmdline)")
            } catch {
                printError("wyrcan: error: \(error.description)")
                throw ExitCode(1)
            }
        }
    }

    struct Write: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a cmdline and store its wyr.img, wyr.arg and wyr.net.* in EFI.",
            discussion: """
                Checks the cmdline's grammar and that its image resolves in the registry to a \
                manifest for the platform (wyr.insecure= and wyr.platform= of the cmdline apply), \
                then writes the variable. Nothing is written, and a stored config stays, when a \
                check fails. At boot, wyr.efi=write stores only after the image was pulled and \
                converted.
                """)
        @Option(help: "The cmdline to store (it must name an image).") var cmdline: String
        @Option(help: "efivarfs directory.") var efivars = "/sys/firmware/efi/efivars"
        @Flag(help: "Do not contact the registry (only the cmdline's grammar is checked).") var noCheck = false
        func run() throws {
            do {
                let args = try WyrcanArgs(parsing: cmdline)
                guard let image = args.image else { throw CmdlineError.missingValue(parameter: "wyr.img", expected: "REGISTRY/IMAGE") }
                _ = try args.nextCmdline()
                // (What the variable format cannot hold is refused before the registry is asked.)
                let config = try StoredConfig(args: args)
                if !noCheck {
                    let resolved = try RegistryClient(reference: image, options: RegistryOptions(bootArgs: args)).resolve()
                    printError("\(image) resolves to \(resolved.manifestDigest) (\(resolved.platform), \(resolved.manifest.layers.count) layers)")
                }
                try EFIVariableStore(directory: efivars).write(config)
                print("stored: \(try config.cmdlineText())")
            } catch {
                printError("wyrcan: error: \(error)")
                throw ExitCode(1)
            }
        }
    }

    struct Clear: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove the stored config.")
        @Option(help: "efivarfs directory.") var efivars = "/sys/firmware/efi/efivars"
        func run() throws {
            do throws(EFIVariableStore.StoreError) {
                try EFIVariableStore(directory: efivars).clear()
                print("cleared")
            } catch {
                printError("wyrcan: error: \(error.description)")
                throw ExitCode(1)
            }
        }
    }
}
