import Testing
import WyrcanChain
@testable import WyrcanFleet
@testable import WyrcanServe

@Suite struct MACAddressTests {
    @Test(arguments: ["52:54:00:12:34:56", "52-54-00-12-34-56", "525400123456", "5254.0012.3456", "52:54:00:12:34:56".uppercased()])
    func notations(text: String) {
        #expect(MACAddress(text)?.description == "52:54:00:12:34:56")
    }

    @Test(arguments: ["52:54:00:12:34", "52:54:00:12:34:5g", "52:54-00:12:34:56", "", "5254001234567", "${net0/mac}", "ｆｆ:54:00:12:34:56", "٥2:54:00:12:34:56"])
    func rejects(text: String) {
        #expect(MACAddress(text) == nil)
    }
}

@Suite struct InventoryTests {
    static let base = """
        releases:
          stable: {kernel: wyrcan/1/wyrcan.kernel, initrd: wyrcan/1/wyrcan.initrd}
        defaults: {release: stable, image: registry.local/os/debian, args: [console=ttyS0]}
        groups:
          web: {image: "registry.local/os/web:2", args: ["quiet log-buf-len=1M"]}

        """

    func load(_ text: String) throws(InventoryErrors) -> Inventory {
        try InventoryLoader.load(text: text, file: "fleet.yaml")
    }

    func errors(_ text: String) -> [String] {
        do { _ = try load(text); return [] } catch { return error.errors.map(\.description) }
    }

    @Test func inheritanceAndArgsOrder() throws {
        let inv = try load(Self.base + """
            hosts:
              "52:54:00:12:34:56": {group: web, args: [loglevel=3]}
            """)
        let (p, group) = try #require(inv.profile(for: MACAddress("525400123456")!))
        #expect(group == "web")
        #expect(p.images == ["registry.local/os/web:2"])
        #expect(p.args.map(\.text) == ["console=ttyS0", "quiet log-buf-len=1M", "loglevel=3"] && !p.args.contains(where: \.secret))
        let config = try HostBootConfig(mac: MACAddress("525400123456")!, group: group, profile: p, inventory: inv)
        let cmdline = try config.cmdline(reportURL: nil)
        #expect(try WyrcanArgs(parsing: cmdline).nextCmdline() == "console=ttyS0 quiet log-buf-len=1M loglevel=3")
    }

    @Test func duplicateMACsAcrossNotations() {
        let e = errors(Self.base + """
            hosts:
              "52:54:00:12:34:56": {}
              5254.0012.3456: {}
            """)
        #expect(e == ["fleet.yaml:8: hosts.5254.0012.3456: 52:54:00:12:34:56 is already defined on line 7 (MACs are compared in any notation)"])
    }

    @Test func errorsNameFileLineAndField() {
        let e = errors(Self.base + """
            hosts:
              "52:54:00:12:34:56": {group: nope}
              "52:54:00:12:34:57": {image: "Not/Valid"}
              "52:54:00:12:34:58": {imagee: x}
              "zz:54:00:12:34:58": {}
              "52:54:00:12:34:59": {args: ['a="unbalanced']}
              "52:54:00:12:34:5a": {release: beta}
            unknwon: deny
            """)
        #expect(e.contains("fleet.yaml:7: hosts.52:54:00:12:34:56.group: no group named \"nope\""), "\(e)")
        #expect(e.contains { $0.hasPrefix("fleet.yaml:9: hosts.52:54:00:12:34:58.imagee: unknown key") }, "\(e)")
        #expect(e.contains { $0.hasPrefix("fleet.yaml:10: hosts.zz:54:00:12:34:58: not a MAC address") }, "\(e)")
        #expect(e.contains { $0.hasPrefix("fleet.yaml:11: hosts.52:54:00:12:34:59.args[0]: \"a=\\\"unbalanced\" has an unbalanced double quote") }, "\(e)")
        #expect(e.contains { $0.hasPrefix("fleet.yaml:13: unknwon: unknown key") }, "\(e)")
        #expect(e.map { Int($0.split(separator: ":")[1])! } == e.map { Int($0.split(separator: ":")[1])! }.sorted())
    }

    /// Once the structure is sound, every host is rendered and each failure is located.
    @Test func renderErrorsNameTheHost() {
        let e = errors(Self.base + """
            hosts:
              "52:54:00:12:34:57": {image: "Not/Valid"}
              "52:54:00:12:34:5a": {release: beta}
              "52:54:00:12:34:5b": {net: {lan: {Network: {Description: 'say "hi"'}}}}
            """)
        #expect(e.count == 3, "\(e)")
        #expect(e.first?.hasPrefix("fleet.yaml:7: hosts.52:54:00:12:34:57.image: invalid image reference \"Not/Valid\"") == true, "\(e)")
        #expect(e.contains("fleet.yaml:8: hosts.52:54:00:12:34:5a.release: no release named \"beta\""), "\(e)")
        #expect(e.contains { $0.hasPrefix("fleet.yaml:9: hosts.52:54:00:12:34:5b.net.lan:") }, "\(e)")
    }

    @Test func yamlSyntaxErrorsHaveALine() {
        let e = errors("releases:\n  a: [unclosed\n")
        #expect(e.count == 1)
        #expect(e.first?.hasPrefix("fleet.yaml:") == true)
    }

    /// Hostile values either load and pass through iPXE and the kernel unchanged, or are refused.
    @Test(arguments: [
        ("echo;reboot", true), ("a || b", true), ("x=$HOME", true), ("it's", true), ("'single quotes'", true),
        ("back\\\\slash", true), ("k=\"quoted value\"", true), ("#comment", true), ("&&", true),
        ("boom\nreboot", true), ("x=${net0/mac}", false), ("tab\there", true), ("k=\"a\nb\"", false), ("two  spaces", true), ("k=\"two  spaces\"", false),
    ])
    func hostileArgs(arg: String, loads: Bool) throws {
        let yamlArg = arg.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\t", with: "\\t")
        let text = Self.base + "hosts:\n  \"52:54:00:12:34:56\": {args: [\"\(yamlArg)\"]}\n"
        guard loads else {
            #expect(!errors(text).isEmpty, "\(arg.debugDescription) loaded")
            return
        }
        let inv = try load(text)
        let (p, g) = try #require(inv.profile(for: MACAddress("525400123456")!))
        let cmdline = try HostBootConfig(mac: MACAddress("525400123456")!, group: g, profile: p, inventory: inv).cmdline(reportURL: "http://10.0.2.2:8080/v1/report/52:54:00:12:34:56")
        // iPXE: whitespace split, no terminator or comment token, no ${, re-joined with spaces.
        #expect(IPXEScript.unsafeToken(in: cmdline) == nil)
        let viaIPXE = cmdline.split(separator: " ").joined(separator: " ")
        #expect(viaIPXE == cmdline)
        // Wyrcan then hands the final system exactly the arg's parameters.
        let next = try WyrcanArgs(parsing: viaIPXE).nextCmdline()
        let expected = (["console=ttyS0"] + KernelCmdline.tokenize(arg).map(\.raw)).joined(separator: " ")
        #expect(next == expected)
    }

    @Test func hostileNetAndKernelArgs() {
        #expect(!errors(Self.base + "hosts:\n  \"52:54:00:12:34:56\": {net: {lan: {Network: {Description: 'a\"b'}}}}\n").isEmpty)
        #expect(!errors(Self.base + "hosts:\n  \"52:54:00:12:34:56\": {kernel_args: ['a b']}\n").isEmpty)
        #expect(!errors(Self.base + "hosts:\n  \"52:54:00:12:34:56\": {kernel_args: ['#x']}\n").isEmpty)
        #expect(!errors(Self.base + "hosts:\n  \"52:54:00:12:34:56\": {kernel_args: ['wyr.img=x']}\n").isEmpty)
        #expect(!errors(Self.base + "releases2: {}\n").isEmpty)
        #expect(!errors("releases:\n  s: {kernel: ../etc/passwd, initrd: x}\n").isEmpty)
        #expect(!errors("releases:\n  s: {kernel: 'a b', initrd: x}\n").isEmpty)
    }

    @Test func chainsAndVolumes() throws {
        let inv = try load(Self.base + """
            hosts:
              "52:54:00:12:34:56":
                image: [r.io/wyrcan:2, r.io/os]
                args: ['motd="a b"']
                insecure: [r.io]
                s3: ["s,http://10.0.2.2:9000,AK,SK"]
                volumes: ["data,mirror=s/bucket,pull_on=boot"]
            """)
        let (p, g) = try #require(inv.profile(for: MACAddress("525400123456")!))
        let cmdline = try HostBootConfig(mac: MACAddress("525400123456")!, group: g, profile: p, inventory: inv).cmdline(reportURL: nil)
        let chain = try Chain(decoding: cmdline)
        #expect(chain.stages.map(\.image) == ["r.io/wyrcan:2", "r.io/os:latest"])
        #expect(chain.stages[0].parameters == ["wyr.insecure=r.io"])
        #expect(chain.stages[1].parameters.contains("wyr.volume=data,mirror=s/bucket,pull_on=boot"))
        #expect(chain.final == ["console=ttyS0", "motd=\"a b\""])
    }

    @Test func exampleInventoryIsValid() throws {
        let inv = try InventoryLoader.load(Self.repo + "/examples/fleet.yaml")
        #expect(inv.hosts.count == 4)
    }

    static let repo: String = {
        var url = #filePath
        for _ in 0..<3 { url = String(url[..<url.lastIndex(of: "/")!]) }
        return url
    }()
}

@Suite struct AssetRangeTests {
    @Test func ranges() {
        #expect(AssetHandler.parseRange("bytes=0-9", size: 100) == .range(0, 9))
        #expect(AssetHandler.parseRange("bytes=90-", size: 100) == .range(90, 99))
        #expect(AssetHandler.parseRange("bytes=-10", size: 100) == .range(90, 99))
        #expect(AssetHandler.parseRange("bytes=50-500", size: 100) == .range(50, 99))
        #expect(AssetHandler.parseRange("bytes=100-", size: 100) == .unsatisfiable)
        #expect(AssetHandler.parseRange("bytes=0-1,5-6", size: 100) == .none)
        #expect(AssetHandler.parseRange("items=0-1", size: 100) == .none)
        #expect(AssetHandler.parseRange("bytes=9-1", size: 100) == .none)
    }
}
