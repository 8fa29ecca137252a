import ArgumentParser
import WyrcanChain
import WyrcanFleet

@main
struct WyrcanServe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wyrcan-serve",
        abstract: "The Wyrcan fleet server: per-machine iPXE scripts, cmdlines and boot assets.",
        discussion: """
            Machines PXE/iPXE-boot against wyrcan-serve: /boot.ipxe chains to /ipxe?mac=MAC, the \
            per-host script that loads the host's Wyrcan release (kernel + initrd from --assets) \
            with the host's full Wyrcan cmdline from the inventory. Run without a subcommand to serve.
            """,
        version: WyrcanVersion.string,
        subcommands: [Serve.self, Check.self, Render.self, Cmdline.self, Hosts.self],
        defaultSubcommand: Serve.self)
}
