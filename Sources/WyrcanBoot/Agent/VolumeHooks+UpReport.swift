import WyrcanChain

/// Where the booted system says it is up: the `wyr.report` URL and how its server is trusted.
struct UpReport {
    var url: String
    /// `sha256//…` of the report server's key (`wyr.server_pin`), when the report goes to it.
    var pin: String?
    /// A CA bundle in Wyrcan's initramfs the report server is trusted with.
    var caFile: String?
}

/// `wyr.report` after the kexec: the booted system reports `up` once it is running. A small
/// shell script (no second Wyrcan in the next initrd: the report needs an HTTP client, not the
/// agent) with curl, else wget, else bash's /dev/tcp for a plain-HTTP URL; a systemd unit runs it
/// after multi-user.target, and an init without systemd calls /usr/lib/wyrcan/report-up itself.
extension VolumeHooks {
    static let upUnit = "wyrcan-up.service"
    static let upScript = "/usr/lib/wyrcan/report-up"
    static let upCA = "/usr/lib/wyrcan/report-ca.pem"

    func injectUpReport(_ up: UpReport) throws(FileError) {
        try FileSystem.createDirectory(overlay + "/usr/lib/wyrcan")
        var curlTrust = ""
        if let caFile = up.caFile {
            try copy(caFile, to: overlay + Self.upCA, mode: 0o644)
            curlTrust += " --cacert \(Self.upCA)"
        }
        // A pin alone trusts the key, not a chain (as Wyrcan's own client does): curl checks the
        // pin with -k too.
        if let pin = up.pin { curlTrust += (up.caFile == nil ? " -k" : "") + " --pinnedpubkey '\(pin)'" }
        // (The URL holds this boot's token: readable by root only.)
        let url = up.url.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''")
        try FileSystem.writeFile(overlay + Self.upScript, Array(Self.upScriptText(url: url, curlTrust: curlTrust, curlOnly: !curlTrust.isEmpty).utf8), mode: 0o700)
        try installUnit(Self.upUnit, """
            [Unit]
            Description=Report to wyrcan-serve that this system is up (wyr.report)
            Wants=network-online.target
            After=network-online.target multi-user.target

            [Service]
            Type=oneshot
            ExecStart=\(Self.upScript)
            TimeoutStartSec=120

            [Install]
            WantedBy=multi-user.target

            """, wantedBy: "multi-user.target")
    }

    /// `curlOnly`: the server is trusted by a CA or a pin, which only the curl branch applies.
    static func upScriptText(url: String, curlTrust: String, curlOnly: Bool) -> String {
        """
        #!/bin/sh
        # Injected by Wyrcan at boot (wyr.report): tells wyrcan-serve this system is up. systemd runs
        # it after multi-user.target (wyrcan-up.service); an init without systemd calls it itself.
        url='\(url)'
        body="{\\"stage\\": \\"up\\", \\"detail\\": \\"$(uname -r), up $(cut -d' ' -f1 /proc/uptime) s\\"}"
        for attempt in 1 2 3 4 5; do
          if command -v curl >/dev/null 2>&1; then
            curl -fsS -m 10\(curlTrust) -X POST -H 'Content-Type: application/json' --data "$body" "$url" >/dev/null && exit 0
          elif \(curlOnly ? "false" : "command -v wget >/dev/null 2>&1"); then
            wget -q -T 10 -O /dev/null --header='Content-Type: application/json' --post-data="$body" "$url" && exit 0
          elif [ -n "$BASH_VERSION" ] || command -v bash >/dev/null 2>&1; then
            case $url in
              http://*) bash -c 'rest=${1#http://}; hostport=${rest%%/*}; path=/${rest#*/}; host=${hostport%:*}; port=${hostport##*:}
                  [ "$port" = "$hostport" ] && port=80
                  exec 3<>/dev/tcp/$host/$port || exit 1
                  printf "POST %s HTTP/1.1\\r\\nHost: %s\\r\\nContent-Type: application/json\\r\\nContent-Length: %s\\r\\nConnection: close\\r\\n\\r\\n%s" "$path" "$hostport" "${#2}" "$2" >&3
                  read -r -t 20 status <&3; case $status in *" 204 "*|*" 200 "*) exit 0 ;; esac; exit 1' report "$url" "$body" && exit 0 ;;
              *) echo "wyrcan report-up: an HTTPS report URL needs curl or wget" >&2; exit 1 ;;
            esac
          else
            echo "wyrcan report-up: no curl\(curlOnly ? " (the report server is trusted by its CA or key pin)" : ", wget or bash") to report with" >&2; exit 1
          fi
          sleep $((attempt * 2))
        done
        # (Not the URL: it holds this boot's token.)
        echo "wyrcan report-up: could not reach the report server" >&2
        exit 1

        """
    }
}
