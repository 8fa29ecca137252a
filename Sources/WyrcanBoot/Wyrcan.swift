import ArgumentParser
import WyrcanChain
#if canImport(Glibc)
import Glibc
#endif

/// As PID 1 (the initramfs's /init) wyrcan is the boot agent; otherwise a command-line tool.
@main
enum Entry {
    static func main() {
        LinuxSystem.returnLargeAllocations()
        if getpid() == 1 { BootAgent().run() }
        Wyrcan.main()
    }
}

struct Wyrcan: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wyrcan",
        abstract: "The container bootloader: boots a machine into a container image.",
        discussion: """
            As the /init of Wyrcan's initramfs, wyrcan reads the kernel cmdline, brings up the \
            network, pulls the image named by wyr.img, turns it into kernel + initrd + cmdline and \
            kexecs into it. The subcommands below work offline on any Linux machine.
            """,
        version: WyrcanVersion.string,
        subcommands: [Plan.self, Convert.self, Verify.self, Efi.self, Volume.self, Modprobe.self])
}
