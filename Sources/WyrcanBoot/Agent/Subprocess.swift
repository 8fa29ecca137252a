import WyrcanChain
#if canImport(Glibc)
import Glibc
#endif

/// Runs a helper program from the initramfs (busybox applets) and waits for it. The boot agent
/// has no Foundation, so this is posix_spawn directly.
enum Subprocess {
    @discardableResult
    static func run(_ path: String, _ arguments: [String], quiet: Bool = false) -> Int32 {
        var pid: pid_t = 0
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if quiet {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        }
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let env: [UnsafeMutablePointer<CChar>?] = [strdup("PATH=/usr/sbin:/usr/bin:/sbin:/bin"), nil]
        defer { env.forEach { free($0) } }
        guard posix_spawn(&pid, path, &actions, nil, argv, env) == 0 else { return 127 }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    /// Replaces the agent with an interactive shell on the console (rescue).
    static func execShell() -> Never {
        Console.line("Rescue shell: type 'reboot -f' to restart, or 'exec /init' to try again.")
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sh"), nil]
        execv("/bin/sh", argv)
        Console.failure("cannot start /bin/sh")
        LinuxSystem.restart()
    }
}
