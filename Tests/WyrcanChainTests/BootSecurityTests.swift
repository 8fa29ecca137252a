import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import WyrcanChain

/// Secure Boot and lockdown as the kernel and firmware show them, and what a refused kexec says.
@Suite struct BootSecurityTests {
    static let globalGUID = "8be4df61-93ca-11d2-aa0d-00e098032b8c"

    /// An efivarfs-like directory with SecureBoot/SetupMode (attribute word + one byte), and a
    /// lockdown file with `lockdown` as its text.
    func machine(_ name: String, secureBoot: UInt8?, setupMode: UInt8? = 0, lockdown: String?) throws -> BootSecurity {
        let dir = try freshTemporaryDirectory("security-\(name)")
        let efivars = dir + "/efivars"
        try FileManager.default.createDirectory(atPath: efivars, withIntermediateDirectories: true)
        for (variable, value) in [("SecureBoot", secureBoot), ("SetupMode", setupMode)] {
            guard let value else { continue }
            try Data([6, 0, 0, 0, value]).write(to: URL(fileURLWithPath: "\(efivars)/\(variable)-\(Self.globalGUID)"))
        }
        if let lockdown { try lockdown.write(toFile: dir + "/lockdown", atomically: true, encoding: .utf8) }
        return BootSecurity.current(efiVariables: efivars, lockdownFile: dir + "/lockdown")
    }

    @Test func readsSecureBootAndTheActiveLockdownLevel() throws {
        let on = try machine("on", secureBoot: 1, lockdown: "none [integrity] confidentiality\n")
        #expect(on == BootSecurity(secureBoot: .on, lockdown: "integrity"))
        #expect(on.isLockedDown)
        #expect(on.summary == "Secure Boot on, kernel lockdown integrity")
        let off = try machine("off", secureBoot: 0, lockdown: "[none] integrity confidentiality\n")
        #expect(off == BootSecurity(secureBoot: .off, lockdown: "none"))
        #expect(!off.isLockedDown)
        let setup = try machine("setup", secureBoot: 0, setupMode: 1, lockdown: nil)
        #expect(setup == BootSecurity(secureBoot: .setupMode, lockdown: nil))
        #expect(setup.summary == "Secure Boot off (setup mode), kernel lockdown unsupported")
        let noSecureBoot = try machine("none", secureBoot: nil, setupMode: nil, lockdown: "[none] integrity confidentiality\n")
        #expect(noSecureBoot == BootSecurity(secureBoot: .off, lockdown: "none"))
        let bios = BootSecurity.current(efiVariables: "/nonexistent/efivars", lockdownFile: "/nonexistent/lockdown")
        #expect(bios == BootSecurity(secureBoot: .notEFI, lockdown: nil))
        #expect(BootSecurity.activeLockdown("none integrity") == nil)
        #expect(BootSecurity.activeLockdown("[] x") == nil)
    }

    /// Each signature refusal names its cause, the state, and the fix; other errors are left to
    /// their own message, and EPERM is a lockdown refusal only under lockdown.
    @Test func aRefusedKexecNamesTheCauseAndTheFix() {
        let locked = BootSecurity(secureBoot: .on, lockdown: "integrity")
        let causes: [(Int32, String)] = [
            (ENODATA, "carries no signature"),
            (ENOKEY, "not by a key this kernel trusts"),
            (EKEYREJECTED, "signature does not match it"),
            (EBADMSG, "signature does not match it"),
            (ENOPKG, "an algorithm this kernel cannot check"),
            (EPERM, "kernel lockdown refuses"),
            (EACCES, "kernel lockdown refuses"),
        ]
        for (code, cause) in causes {
            let message = locked.kexecRefusal(code: code)
            #expect(message?.contains(cause) == true, "\(code): \(message ?? "nil")")
            #expect(message?.contains("(Secure Boot on, kernel lockdown integrity)") == true)
            #expect(message?.contains("--sign-key/--sign-cert") == true && message?.contains("MOK") == true)
        }
        #expect(locked.kexecRefusal(code: ENOEXEC) == nil)
        #expect(locked.kexecRefusal(code: ENOMEM) == nil)
        let open = BootSecurity(secureBoot: .off, lockdown: "none")
        #expect(open.kexecRefusal(code: EPERM) == nil)
        #expect(open.kexecRefusal(code: ENOKEY)?.contains("not by a key") == true)
    }
}
