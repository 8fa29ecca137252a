import ArgumentParser
import WyrcanChain
#if canImport(Glibc)
import Glibc
#endif

/// `wyrcan modprobe NAME…`: loads modules the way the boot agent does, for a system built on
/// Wyrcan's tree, whose modules are stored zstd-compressed (busybox's modprobe cannot read them).
struct Modprobe: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load kernel modules (and their dependencies) from /lib/modules/$(uname -r).",
        discussion: "Reads modules.dep and modules.softdep; .ko, .ko.zst, .ko.xz and .ko.gz files. Needs root.")

    @Argument(help: "Module names (dashes or underscores).")
    var names: [String]

    @Option(help: "The kernel release whose modules to load (default: the running kernel's).")
    var release: String = LinuxSystem.kernelRelease

    func run() throws {
        let failures = ModuleLoader(release: release).load(names: names)
        for failure in failures { printError("wyrcan modprobe: \(failure)") }
        if !failures.isEmpty { throw ExitCode(1) }
    }
}
