import WyrcanChain

/// iPXE scripts. iPXE's parser (core/exec.c) splits a line on whitespace with no quoting or
/// escapes, expands `${…}` in every token, ends a command at a token `||`, `&&` or `;`, starts a
/// comment at a token beginning with `#`, and re-joins `kernel` arguments with single spaces. So
/// a cmdline is passed through unchanged exactly when `unsafeToken` finds nothing.
public enum IPXEScript {
    public static let initrdName = "wyrcan.initrd"

    public static func unsafeToken(in cmdline: String) -> String? {
        if cmdline.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != " " || $0.value == 0x7F }) {
            return "control characters (newline, tab, …) cannot pass through an iPXE script"
        }
        if cmdline.contains("  ") || cmdline.hasPrefix(" ") || cmdline.hasSuffix(" ") {
            return "iPXE collapses runs of spaces; use single spaces inside quoted values"
        }
        if cmdline.contains("${") { return "iPXE would expand '${…}'; it cannot appear in a cmdline it carries" }
        for token in cmdline.split(separator: " ") {
            if token.hasPrefix("#") { return "a parameter starting with '#' would start an iPXE comment: \(token)" }
            if token == "||" || token == "&&" || token == ";" { return "\(Message.quoted(token)) would end the iPXE command" }
        }
        return nil
    }

    /// The bootstrap every machine chains to first: fetch its own script by MAC, forever retrying.
    public static func bootstrap(baseURL: String) -> String {
        """
        #!ipxe
        # wyrcan-serve bootstrap: chains to this machine's own script.
        :retry
        chain --autofree \(baseURL)/ipxe?mac=${net0/mac}&arch=${buildarch} || goto failed
        :failed
        echo wyrcan-serve: cannot get the script for ${net0/mac} from \(baseURL), retrying in 5 s
        sleep 5
        goto retry

        """
    }

    public static func host(_ config: HostBootConfig, baseURL: String, cmdline: String) -> String {
        let header = "# wyrcan-serve: \(config.mac)" + (config.group.map { " (group \($0))" } ?? "")
        guard config.mode == .boot, let release = config.release else {
            return """
                #!ipxe
                \(header): boot from local disk
                echo wyrcan-serve: \(config.mac) boots from its local disk
                exit

                """
        }
        return """
            #!ipxe
            \(header), release \(config.releaseName ?? "")
            :retry
            kernel \(baseURL)/assets/\(release.kernel) initrd=\(initrdName) \(cmdline) || goto failed
            initrd --name \(initrdName) \(baseURL)/assets/\(release.initrd) || goto failed
            boot || goto failed
            :failed
            echo wyrcan-serve: booting Wyrcan failed, retrying in 10 s
            sleep 10
            goto retry

            """
    }
}
