#if canImport(Glibc)
import Glibc
#endif

/// What this boot enforces: the firmware's Secure Boot state (the `SecureBoot` EFI variable) and
/// the kernel's lockdown (`/sys/kernel/security/lockdown`). Under Secure Boot Debian's kernel locks
/// itself down (`integrity`), and then kexec loads only kernels whose signature it trusts.
public struct BootSecurity: Sendable, Equatable {
    public enum SecureBoot: String, Sendable {
        case on, off
        /// The firmware has no platform key yet: it verifies nothing.
        case setupMode = "off (setup mode)"
        /// BIOS boot, or no EFI variables to read.
        case notEFI = "off (not an EFI boot)"
    }

    public var secureBoot: SecureBoot
    /// The active lockdown level (`none`, `integrity`, `confidentiality`); nil when the kernel
    /// has no lockdown support (or securityfs is not mounted).
    public var lockdown: String?

    public init(secureBoot: SecureBoot, lockdown: String?) {
        self.secureBoot = secureBoot
        self.lockdown = lockdown
    }

    /// Reads both (efivarfs and securityfs mounted by the caller; absent ones read as unknown).
    public static func current(efiVariables: String = "/sys/firmware/efi/efivars",
                               lockdownFile: String = "/sys/kernel/security/lockdown") -> BootSecurity {
        let variables = EFIVariables(directory: efiVariables)
        let text = (try? FileSystem.readFile(lockdownFile)).map { String(decoding: $0, as: UTF8.self) }
        return BootSecurity(secureBoot: secureBoot(variables), lockdown: text.flatMap(activeLockdown))
    }

    static func secureBoot(_ variables: EFIVariables) -> SecureBoot {
        guard variables.isAvailable else { return .notEFI }
        // (Firmware without Secure Boot support has no SecureBoot variable at all.)
        if (try? variables.read("SetupMode", guid: EFIBootManager.globalGUID))??.first == 1 { return .setupMode }
        return (try? variables.read("SecureBoot", guid: EFIBootManager.globalGUID))??.first == 1 ? .on : .off
    }

    /// The bracketed level of the lockdown file ("none [integrity] confidentiality").
    public static func activeLockdown(_ text: String) -> String? {
        guard let open = text.firstIndex(of: "["), let close = text[open...].firstIndex(of: "]") else { return nil }
        let level = text[text.index(after: open)..<close]
        return level.isEmpty ? nil : String(level)
    }

    /// Whether kexec is limited to signed kernels.
    public var isLockedDown: Bool { lockdown.map { $0 != "none" } ?? false }

    /// "Secure Boot on, kernel lockdown integrity": for the console and `wyr.report`.
    public var summary: String {
        "Secure Boot \(secureBoot.rawValue), kernel lockdown \(lockdown ?? "unsupported")"
    }

    /// Why `kexec_file_load` refused the image's kernel with `code`, and the fix, when it is a
    /// signature refusal under lockdown; nil for other errors.
    public func kexecRefusal(code: Int32) -> String? {
        let cause: String
        switch code {
        case ENODATA:
            cause = "the image's kernel carries no signature"
        case ENOPKG:
            cause = "the image's kernel is signed with an algorithm this kernel cannot check"
        case ENOKEY:
            cause = "the image's kernel is signed, but not by a key this kernel trusts (its own build key, the firmware's db, or MOK; a distribution's signature needs shim)"
        case EKEYREJECTED, EBADMSG, ELIBBAD:
            cause = "the image's kernel's signature does not match it (changed after signing, or a damaged signature)"
        case EPERM, EACCES:
            guard isLockedDown else { return nil }
            cause = "kernel lockdown refuses to load a kernel whose signature it cannot check"
        default:
            return nil
        }
        return "\(cause) (\(summary)): sign /boot/wyrcan.kernel in the image with a key in the firmware's db "
            + "(examples/*/build --sign-key/--sign-cert, or scripts/sign-kernel) or enrol your key in MOK with shim; see docs/secure-boot.md"
    }
}
