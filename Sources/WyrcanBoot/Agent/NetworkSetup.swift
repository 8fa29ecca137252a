import WyrcanChain

/// Brings up every Ethernet link with busybox's `ip` and `udhcpc`, applying the `wyr.net.*`
/// networkd files where they match. Honoured: `[Match] Name=` (exact or trailing `*`),
/// `MACAddress=`, `Type=ether`; `[Network] DHCP=` (yes/ipv4/both: DHCP; no: none), `Address=`
/// (static, repeatable), `Gateway=`, `DNS=` (repeatable); `[Link] MTUBytes=`. Other keys are
/// carried in the plan but not applied by the initramfs (it has no networkd).
struct NetworkSetup {
    let config: NetworkConfig

    struct Link {
        var name: String
        var mac: String
    }

    static func ethernetLinks() -> [Link] {
        guard let dir = try? FileSystem.list("/sys/class/net") else { return [] }
        return dir.sorted().compactMap { name in
            let type = (try? FileSystem.readFile("/sys/class/net/\(name)/type")).map { String(decoding: $0, as: UTF8.self).trimmingSpaces() }
            guard name != "lo", type?.hasPrefix("1") == true else { return nil }
            let mac = (try? FileSystem.readFile("/sys/class/net/\(name)/address")).map { String(decoding: $0, as: UTF8.self).filter { !$0.isWhitespace } } ?? ""
            return Link(name: name, mac: mac.lowercased())
        }
    }

    func matches(_ file: NetworkConfig.File, _ link: Link) -> Bool {
        for section in file.sections where section.name == "Match" {
            for (key, value) in section.entries {
                switch key {
                case "Name":
                    if value.hasSuffix("*") ? !link.name.hasPrefix(String(value.dropLast())) : value != link.name { return false }
                case "MACAddress": if value.lowercased() != link.mac { return false }
                case "Type": if value != "ether" { return false }
                default: continue
                }
            }
        }
        return true
    }

    func values(_ file: NetworkConfig.File, _ section: String, _ key: String) -> [String] {
        file.sections.filter { $0.name == section }.flatMap { $0.entries.filter { $0.key == key }.map(\.value) }
    }

    /// Configures every link; returns those that got an address, in order.
    func bringUp() -> [Link] {
        var configured: [Link] = []
        var dns: [String] = []
        Subprocess.run("/bin/ip", ["link", "set", "lo", "up"], quiet: true)
        for link in Self.ethernetLinks() {
            let file = config.effectiveFiles.first { $0.kind == .network && matches($0, link) }
            let linkFile = config.effectiveFiles.first { $0.kind == .link && matches($0, link) }
            if let mtu = linkFile.flatMap({ values($0, "Link", "MTUBytes").last }) {
                Subprocess.run("/bin/ip", ["link", "set", link.name, "mtu", mtu], quiet: true)
            }
            Subprocess.run("/bin/ip", ["link", "set", link.name, "up"], quiet: true)
            guard let file else { continue }
            let addresses = values(file, "Network", "Address")
            let dhcp = values(file, "Network", "DHCP").last ?? (addresses.isEmpty ? "yes" : "no")
            dns += values(file, "Network", "DNS")
            var ok = false
            for address in addresses {
                let added = Subprocess.run("/bin/ip", ["addr", "add", address, "dev", link.name]) == 0
                Console.detail(added ? "address \(address) on \(link.name)" : "could not add address \(address) to \(link.name)")
                ok = added || ok
            }
            if let gateway = values(file, "Network", "Gateway").last {
                let routed = Subprocess.run("/bin/ip", ["route", "add", "default", "via", gateway, "dev", link.name]) == 0
                Console.detail(routed ? "default route via \(gateway)" : "could not route via \(gateway) on \(link.name)")
            }
            if ["yes", "ipv4", "both", "true"].contains(dhcp) {
                Console.detail("DHCP on \(link.name) (\(link.mac))")
                ok = Subprocess.run("/bin/udhcpc", ["-i", link.name, "-s", "/etc/wyrcan/udhcpc.script", "-n", "-q", "-f", "-t", "6", "-T", "2"]) == 0 || ok
            }
            if ok { configured.append(link) }
        }
        if !dns.isEmpty {
            try? FileSystem.writeFile("/etc/resolv.conf", Array(dns.map { "nameserver \($0)\n" }.joined().utf8))
        }
        return configured
    }
}


#if canImport(Glibc)
import Glibc
#endif
