import WyrcanChain
#if canImport(Glibc)
import Glibc
#endif

/// Stage lines on the console, in the original's style: "● Getting IMG", "● Booting IMG (…)",
/// "● Failure: …". Written straight to the file descriptors (no buffering at PID 1).
enum Console {
    static func line(_ text: String, fd: Int32 = 1) {
        var bytes = Array((text + "\n").utf8)
        _ = write(fd, &bytes, bytes.count)
    }

    static func stage(_ text: String) { line("● " + text) }
    static func detail(_ text: String) { line("  " + text) }
    static func failure(_ text: String) { line("● Failure: " + text) }

    /// Makes /dev/console stdin/stdout/stderr (PID 1 starts with whatever the kernel gave it).
    static func attach() {
        let fd = open("/dev/console", O_RDWR | O_NOCTTY)
        guard fd >= 0 else { return }
        dup2(fd, 0)
        dup2(fd, 1)
        dup2(fd, 2)
        if fd > 2 { close(fd) }
    }
}
