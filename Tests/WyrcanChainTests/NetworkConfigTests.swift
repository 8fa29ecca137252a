import Testing
@testable import WyrcanChain

@Suite struct NetworkConfigTests {
    func files(_ cmdline: String) throws -> [String: String] {
        let a = try WyrcanArgs(parsing: cmdline)
        return Dictionary(uniqueKeysWithValues: a.network.effectiveFiles.map { ($0.path, $0.contents) })
    }

    @Test func defaultFileWhenNoneGiven() throws {
        #expect(try files("wyr.img=r.io/x") == [
            "/etc/systemd/network/autoconf.network": "[Match]\nType=ether\n\n[Network]\nDHCP=yes\nIPv6AcceptRA=yes\n",
        ])
    }

    @Test func originalSyntax() throws {
        #expect(try files("wyr.net.FILE.SECTION.KEY=VAL") == ["/etc/systemd/network/FILE.network": "[SECTION]\nKEY=VAL\n"])
        #expect(try files("wyr.net.netdev.br0.NetDev.Kind=bridge wyr.net.netdev.br0.NetDev.Name=br0") == [
            "/etc/systemd/network/br0.netdev": "[NetDev]\nKind=bridge\nName=br0\n",
        ])
    }

    @Test func staticAddressWithRepeatedKeysAndSections() throws {
        let f = try files("""
            wyr.net.10-lan.Match.Name=eth0 wyr.net.10-lan.Network.Address=10.0.0.2/24 \
            wyr.net.10-lan.Network.Address=10.0.0.3/24 wyr.net.10-lan.Network.DNS=10.0.0.1 \
            wyr.net.10-lan.Route@1.Destination=10.1.0.0/16 wyr.net.10-lan.Route@1.Gateway=10.0.0.1 \
            wyr.net.10-lan.Route@2.Destination=10.2.0.0/16 wyr.net.10-lan.Route@2.Gateway=10.0.0.9 \
            wyr.net.link.10-lan.Match.MACAddress=52:54:00:12:34:56 wyr.net.link.10-lan.Link.MTUBytes=9000 \
            wyr.net.10-lan.Network.Description="uplink to rack 4"
            """)
        #expect(f["/etc/systemd/network/10-lan.network"] == """
            [Match]
            Name=eth0

            [Network]
            Address=10.0.0.2/24
            Address=10.0.0.3/24
            DNS=10.0.0.1
            Description=uplink to rack 4

            [Route]
            Destination=10.1.0.0/16
            Gateway=10.0.0.1

            [Route]
            Destination=10.2.0.0/16
            Gateway=10.0.0.9

            """)
        #expect(f["/etc/systemd/network/10-lan.link"] == "[Match]\nMACAddress=52:54:00:12:34:56\n\n[Link]\nMTUBytes=9000\n")
        #expect(f.count == 2)
    }

    @Test func legacyEFIMapOnlyWhenRepresentable() throws {
        let simple = try WyrcanArgs(parsing: "wyr.net.lan.Network.DHCP=yes").network.legacyMap
        #expect(simple == ["lan.network": ["Network": ["DHCP": "yes"]]])
        #expect(try WyrcanArgs(parsing: "wyr.net.lan.Network.DNS=a wyr.net.lan.Network.DNS=b").network.legacyMap == nil)
        #expect(try WyrcanArgs(parsing: "wyr.net.lan.Route@1.Gateway=a").network.legacyMap == nil)
    }

    @Test(arguments: [
        "wyr.net.lan.Network=yes",
        "wyr.net.a.b.c.d.e=1",
        "wyr.net.bogus.lan.Network.DHCP=yes",
        "wyr.net.la/n.Network.DHCP=yes",
        "wyr.net.lan.Net-work.DHCP=yes",
        "wyr.net.lan.Network.DH_CP=yes",
        "wyr.net.lan.Route@x.Gateway=1",
        "wyr.net.lan.Network.DHCP",
        "wyr.net..Network.DHCP=yes",
    ])
    func invalidKeysNameTheParameter(_ parameter: String) {
        let key = String(parameter.split(separator: "=")[0])
        do {
            _ = try WyrcanArgs(parsing: parameter)
            Issue.record("\(parameter) was accepted")
        } catch {
            #expect(error.description.hasPrefix(key + ":"), "\(error.description)")
        }
    }

    @Test func controlCharactersCannotInjectLines() {
        #expect(throws: CmdlineError.self) { try WyrcanArgs(parsing: "wyr.net.lan.Network.Description=\"a\nDHCP=no\"") }
    }
}
