import Testing
@testable import WyrcanChain

/// Every example of the original Wyrcan's README, plus the keys added for fleets.
@Suite struct WyrcanArgsTests {
    @Test func originalImageExample() throws {
        let a = try WyrcanArgs(parsing: "wyr.img=registry.gitlab.com/wyrcan/debian:latest")
        #expect(a.image?.description == "registry.gitlab.com/wyrcan/debian:latest")
        #expect(try a.nextCmdline() == "")
    }

    @Test func originalRecommendedCmdline() throws {
        let a = try WyrcanArgs(parsing: "console=ttyS0 quiet wyr.arg=loglevel=3 wyr.img=CONTAINER".replacingImage("registry.gitlab.com/wyrcan/debian"))
        #expect(a.kernelParameters.map(\.raw) == ["console=ttyS0", "quiet"])
        #expect(try a.nextCmdline() == "loglevel=3")
    }

    @Test func originalArgExampleGivesThreeParameters() throws {
        let a = try WyrcanArgs(parsing: #"wyr.img=r.io/x wyr.arg="quiet log-buf-len=1M" wyr.arg=print-fatal-signals=1"#)
        let next = try a.nextCmdline()
        #expect(next == "quiet log-buf-len=1M print-fatal-signals=1")
        #expect(KernelCmdline.tokenize(next).map(\.raw) == ["quiet", "log-buf-len=1M", "print-fatal-signals=1"])
    }

    @Test func legacyPrefix() throws {
        let a = try WyrcanArgs(parsing: #"wyrcan.img=registry.gitlab.com/wyrcan/debian wyrcan.arg="quiet log-buf-len=1M" wyrcan.arg=print-fatal-signals=1 wyrcan.efi=write wyrcan.net.lan.Network.DHCP=yes"#)
        #expect(a.image?.repository == "wyrcan/debian")
        #expect(a.efi == .write)
        #expect(a.network.files.map(\.name) == ["lan"])
        #expect(try a.nextCmdline() == "quiet log-buf-len=1M print-fatal-signals=1")
    }

    @Test func originalChainExample() throws {
        let cmdline = "wyr.img=registry.gitlab.com/wyrcan/wyrcan wyr.arg=wyr.img=registry.gitlab.com/wyrcan/debian"
        let a = try WyrcanArgs(parsing: cmdline)
        #expect(a.image?.repository == "wyrcan/wyrcan")
        let next = try a.nextCmdline()
        #expect(next == "wyr.img=registry.gitlab.com/wyrcan/debian wyr.depth=1")
        let b = try WyrcanArgs(parsing: next)
        #expect(b.image?.repository == "wyrcan/debian")
        #expect(b.depth == 1)
        #expect(try b.nextCmdline() == "")
    }

    @Test func imageCmdlineComesFirst() throws {
        let a = try WyrcanArgs(parsing: "wyr.img=r.io/x wyr.arg=quiet")
        #expect(try a.nextCmdline(imageCmdline: "root=live:x\nrw  \n") == "root=live:x rw quiet")
        #expect(throws: CmdlineError.imageCmdlineUnbalanced(text: "a=\"b")) { try a.nextCmdline(imageCmdline: "a=\"b") }
    }

    @Test func efiActions() throws {
        #expect(try WyrcanArgs(parsing: "wyr.efi=clear").efi == .clear)
        #expect(throws: CmdlineError.invalidValue(parameter: "wyr.efi", value: "save", reason: "must be 'write' or 'clear'")) {
            try WyrcanArgs(parsing: "wyr.efi=save")
        }
        // Writing needs something to write.
        #expect(throws: CmdlineError.self) { try BootPlan(cmdline: "wyr.efi=write") }
    }

    @Test func lastImageWinsAndEmptyArgAddsNothing() throws {
        let a = try WyrcanArgs(parsing: "wyr.img=r.io/a wyr.img=r.io/b wyr.arg= wyr.arg=\"\" wyr.arg=x")
        #expect(a.image?.repository == "b")
        #expect(try a.nextCmdline() == "x")
    }

    @Test func fleetKeys() throws {
        let a = try WyrcanArgs(parsing: "wyr.img=10.0.2.2:5000/test/hello wyr.insecure=10.0.2.2:5000 wyr.insecure=lab.local wyr.platform=linux/arm64/v8 wyr.rescue wyr.report=http://10.0.2.2:8080/v1/report/52:54:00:12:34:56")
        #expect(a.insecureRegistries == ["10.0.2.2:5000", "lab.local"])
        #expect(a.platform == Platform(os: "linux", architecture: "arm64", variant: "v8"))
        #expect(a.rescue)
        #expect(a.reportURL == "http://10.0.2.2:8080/v1/report/52:54:00:12:34:56")
        #expect(try WyrcanArgs(parsing: "wyr.rescue wyr.rescue=0").rescue == false)
        #expect(try WyrcanArgs(parsing: "wyr.platform=linux/x86_64").platform?.architecture == "amd64")
    }

    @Test(arguments: [
        ("wyr.img=", "wyr.img: missing value"),
        ("wyr.img", "wyr.img: missing value"),
        ("wyr.img=UPPER/Case:tag", "wyr.img: invalid image reference"),
        ("wyr.insecure=bad_host!", "wyr.insecure=bad_host!:"),
        ("wyr.platform=linux", "wyr.platform=linux:"),
        ("wyr.rescue=maybe", "wyr.rescue=maybe:"),
        ("wyr.report=ftp://x", "wyr.report=ftp://x:"),
        ("wyr.arg=\"unbalanced", "wyr.arg: unbalanced double quote"),
        ("wyr.depth=-1", "wyr.depth=-1:"),
        ("wyr.net.lan.Network=1", "wyr.net.lan.Network:"),
    ])
    func badInputNamesTheParameter(input: String, prefix: String) {
        do {
            _ = try WyrcanArgs(parsing: "console=ttyS0 " + input)
            Issue.record("\(input) was accepted")
        } catch {
            #expect(error.description.hasPrefix(prefix), "\(error.description)")
            #expect(!error.description.contains("\n"))
        }
    }

    @Test func nonWyrcanAndUnknownKeys() throws {
        let a = try WyrcanArgs(parsing: "wyr.img=r.io/x wyr.imgg=typo console=ttyS0")
        #expect(a.unknownKeys == ["wyr.imgg"])
        #expect(try BootPlan(cmdline: "wyr.img=r.io/x wyr.imgg=typo").warnings.first?.contains("wyr.imgg") == true)
    }

    @Test func doubleDashEndsParsing() throws {
        let a = try WyrcanArgs(parsing: "wyr.img=r.io/x -- wyr.img=r.io/y wyr.efi=bogus")
        #expect(a.image?.repository == "x")
    }

    @Test func invalidUTF8AfterKernelSplit() {
        #expect(throws: CmdlineError.invalidUTF8(parameter: "wyr.arg")) { try WyrcanArgs(parsing: "wyr.img=r.io/x wyr.arg=voilà") }
        // Quoted for this kernel, but the text would split in the next one: quote it there too.
        #expect(throws: CmdlineError.nestedInvalidUTF8(parameter: "wyr.arg=voilà")) { try WyrcanArgs(parsing: "wyr.img=r.io/x wyr.arg=\"voilà\"").nextCmdline() }
        #expect((try? WyrcanArgs(parsing: "wyr.img=r.io/x wyr.arg=\"'voilà'\"").nextCmdline()) == "\"voilà\"")
    }

    @Test func nestedArgMustBeBalanced() throws {
        let a = try WyrcanArgs(parsing: "wyr.img=r.io/x wyr.arg='oops")
        #expect(throws: CmdlineError.unbalancedNestedArg(parameter: "wyr.arg='oops", text: "\"oops")) { try a.nextCmdline() }
    }

    @Test func tooLongForTheNextKernel() throws {
        let long = String(repeating: "x", count: 2100)
        let a = try WyrcanArgs(parsing: "wyr.img=r.io/x wyr.arg=\(long)")
        #expect(throws: CmdlineError.cmdlineTooLong(length: 2100, limit: 2047, stage: 2)) { try a.nextCmdline() }
    }

    @Test func planJSONHasTheDocumentedKeys() throws {
        let plan = try BootPlan(cmdline: "wyr.img=r.io/x wyr.arg=quiet wyr.efi=write wyr.s3=s3,http://10.0.2.2:9000,AK,SECRETKEY wyr.volume=data,mirror=s3/bucket/host1,pull_on=boot,push_on=shutdown")
        let json = plan.json()
        for key in ["\"image\"", "\"cmdline\"", "\"networkFiles\"", "\"efi\"", "\"volumes\""] {
            #expect(json.contains(key))
        }
        #expect(!json.contains("SECRETKEY"))
        #expect(!plan.text().contains("SECRETKEY"))
        #expect(plan.document.image == "r.io/x:latest")
        #expect(plan.document.cmdline == "quiet")
        #expect(plan.document.efi == "write")
        #expect(plan.document.networkFiles == ["/etc/systemd/network/autoconf.network": "[Match]\nType=ether\n\n[Network]\nDHCP=yes\nIPv6AcceptRA=yes\n"])
        #expect(plan.document.volumes.first?.mirror == "s3/bucket/host1")
    }

    @Test func extraArgsURLDefersTheAliasCheckAndVolumesRenderBack() throws {
        let args = try WyrcanArgs(parsing: "wyr.img=r.io/x wyr.extra_args_url=https://cfg.lab/h1 wyr.volume=data,mirror=store/bucket/h1,pull_on=boot,push_on=changes,overwrite,exclude=*.tmp,path=/srv/data")
        #expect(args.extraArgsURL == "https://cfg.lab/h1")
        let volume = try #require(args.volumes.first)
        #expect(try VolumeSpec(parsing: volume.rendered) == volume)
        #expect(volume.rendered == "data,mirror=store/bucket/h1,pull_on=boot,push_on=changes,overwrite,exclude=*.tmp,path=/srv/data")
        #expect(throws: CmdlineError.self) { try WyrcanArgs(parsing: "wyr.volume=data,mirror=store/bucket") }
        #expect(throws: CmdlineError.self) { try WyrcanArgs(parsing: "wyr.extra_args_url=ftp://x") }
        let alias = try S3Alias(parsing: "store,http://127.0.0.1:9000,KEY,SECRET")
        #expect(try S3Alias(parsing: alias.rendered) == alias)
    }
}

extension String {
    func replacingImage(_ image: String) -> String {
        split(separator: " ").map { $0 == "wyr.img=CONTAINER" ? "wyr.img=\(image)" : String($0) }.joined(separator: " ")
    }
}
