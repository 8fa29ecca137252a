import Foundation
import Testing
@testable import WyrcanChain
import WyrcanHTTP

/// `wyr.server`, `wyr.server_pin`, `wyr.mode` on the cmdline, and the config fetch against the
/// real server (libmicrohttpd + GnuTLS) with a CA, a key pin, and the wrong ones.
@Suite(.serialized) struct ConfigServerTests {
    static let pin = "sha256//" + Data(repeating: 7, count: 32).base64EncodedString()

    @Test func serverKeysParse() throws {
        let args = try WyrcanArgs(parsing: "wyr.server=https://10.0.2.2:8443/ wyr.server_pin=\(Self.pin) wyr.mode=exit")
        #expect(args.server == "https://10.0.2.2:8443" && args.serverPin == Self.pin && args.mode == .exit)
        // Several pins, joined as curl takes them.
        #expect(try WyrcanArgs(parsing: "wyr.server_pin=\(Self.pin);\(Self.pin)").serverPin != nil)
        for bad in ["wyr.server=ftp://x", "wyr.server=https://x/?a=1", "wyr.server_pin=sha256//short", "wyr.server_pin=md5//\(Self.pin.dropFirst(8))",
                    "wyr.mode=disk", "wyr.report=http://x/\u{1b}[2J", "wyr.cache=\"auto\nx\"", "wyr.report=\"http://x/a\nb\""] {
            #expect(throws: CmdlineError.self, "\(bad)") { try WyrcanArgs(parsing: bad) }
        }
        // A volume may name an alias the server will give.
        #expect(try WyrcanArgs(parsing: "wyr.server=https://s wyr.volume=data,mirror=store/bkt").volumes.count == 1)
    }

    @Test func errorsShowValuesOnOneLine() throws {
        do {
            _ = try WyrcanArgs(parsing: "wyr.efi=\"wr\nite\"")
            Issue.record("accepted")
        } catch {
            #expect(!error.description.contains("\n") && error.description.contains("wr\\nite"))
        }
    }

    @Test func fetchedParametersMerge() throws {
        var args = try WyrcanArgs(parsing: "console=ttyS0 wyr.server=https://s wyr.arg=quiet wyr.insecure=r:5000 wyr.volume=data,mirror=store/bkt")
        let fetched = try WyrcanArgs(parsing: "wyr.img=r:5000/os wyr.arg=loglevel=3 wyr.insecure=q:5000 wyr.s3=store,http://s3:9000,AK,SK wyr.report=https://s/v1/report/x wyr.server=https://evil wyr.depth=5")
        try args.merge(fetched: fetched)
        #expect(args.image?.description == "r:5000/os:latest")
        #expect(args.args == ["quiet", "loglevel=3"])
        #expect(args.insecureRegistries == ["r:5000", "q:5000"])
        #expect(args.s3.map(\.alias) == ["store"] && args.reportURL == "https://s/v1/report/x")
        // The answer cannot redirect the fetch or the chain.
        #expect(args.server == "https://s" && args.depth == 0)
        // An answer Wyrcan cannot verify (wyr.extra_args_url) adds only what it always could.
        var plain = try WyrcanArgs(parsing: "wyr.img=r.io/mine wyr.extra_args_url=http://x/y")
        try plain.merge(fetched: WyrcanArgs(parsing: "wyr.img=evil.io/os wyr.efi=write wyr.insecure=evil.io wyr.mode=exit wyr.report=http://evil/ wyr.arg=a wyr.s3=s,http://h,AK,SK wyr.volume=v,mirror=s/bkt"), trusted: false)
        #expect(plain.image?.description == "r.io/mine:latest" && plain.efi == nil && plain.insecureRegistries.isEmpty && plain.mode == .boot && plain.reportURL == nil)
        #expect(plain.args == ["a"] && plain.s3.count == 1 && plain.volumes.count == 1)
        // Nor can a trusted one write EFI.
        var trusted = try WyrcanArgs(parsing: "wyr.server=https://s")
        try trusted.merge(fetched: WyrcanArgs(parsing: "wyr.img=r.io/os wyr.efi=write"))
        #expect(trusted.efi == nil)
        // A volume whose alias nobody gives is refused after the merge.
        var lonely = try WyrcanArgs(parsing: "wyr.server=https://s wyr.volume=data,mirror=nowhere/bkt")
        #expect(throws: CmdlineError.self) { try lonely.merge(fetched: WyrcanArgs(parsing: "wyr.img=r/os")) }
    }

    @Test func trustIsRequiredAndPlainHTTPOnlyWhenAllowed() throws {
        #expect(throws: ConfigServerError.self) { try ConfigServer(args: WyrcanArgs(parsing: "wyr.server=https://s"), caFile: "/nonexistent") }
        #expect(throws: ConfigServerError.self) { try ConfigServer(args: WyrcanArgs(parsing: "wyr.server=http://s:8080"), caFile: nil) }
        let plain = try ConfigServer(args: WyrcanArgs(parsing: "wyr.server=http://s:8080 wyr.insecure=s:8080"), caFile: nil)
        #expect(plain.configURL(for: MACAddress("52:54:00:12:34:56")!) == "http://s:8080/v1/config/52:54:00:12:34:56")
        let pinned = try ConfigServer(args: WyrcanArgs(parsing: "wyr.server=https://s wyr.server_pin=\(Self.pin)"), caFile: "/nonexistent")
        #expect(pinned.options.pinnedPublicKey == Self.pin && pinned.options.caFile == nil && pinned.options.httpsOnly)
    }

    /// A refusal carries the server's Retry-After (the boot agent's next attempt waits for it)
    /// and names the parameter that gave the URL.
    @Test func aRefusalCarriesRetryAfter() throws {
        let server = try HTTPClientTests.echoServer()
        defer { server.stop() }
        let url = "http://127.0.0.1:\(server.port)/busy"
        let client = try HTTPClient()
        do throws(ConfigServerError) {
            _ = try ConfigServer.fetchAnswer(url, client: client, source: "wyr.extra_args_url=\(url)")
            Issue.record("accepted")
        } catch {
            #expect(error.retryAfter == 7 && error.isTransient)
            #expect(error.description.hasPrefix("wyr.extra_args_url=\(url): HTTP 503"), "\(error)")
        }
    }

    @Test func anInvalidAnswerNamesTheParameterNotItsValue() {
        do {
            _ = try ConfigServer.parse(Array("wyr.s3=store,http://s3,AK\nwyr.img=r/os".utf8), source: "wyr.server=https://s")
            Issue.record("accepted")
        } catch {
            #expect(error.description.contains("wyr.s3") && !error.description.contains("AK"), "\(error)")
        }
    }
}

/// Choosing the entry `wyr.mode=exit` leaves to, from efivarfs-shaped files.
@Suite struct EFIBootManagerTests {
    static func loadOption(_ description: String, active: Bool = true, path: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [UInt8(active ? 1 : 0), 0, 0, 0, UInt8(path.count & 0xFF), UInt8(path.count >> 8)]
        for unit in description.utf16 + [0] { out += [UInt8(unit & 0xFF), UInt8(unit >> 8)] }
        return out + path
    }

    /// Device paths: a PCI node then MAC (3/11) for PXE, a hard drive (4/1) for a disk, then the end.
    static let pxePath: [UInt8] = [1, 1, 6, 0, 0, 2] + [3, 11, 37, 0] + [UInt8](repeating: 0, count: 33) + [0x7F, 0xFF, 4, 0]
    static let diskPath: [UInt8] = [1, 1, 6, 0, 0, 3] + [4, 1, 42, 0] + [UInt8](repeating: 0, count: 38) + [0x7F, 0xFF, 4, 0]
    /// The firmware's own setup screen: FvName (4/7) / FvFileName (4/6).
    static let firmwarePath: [UInt8] = [4, 7, 20, 0] + [UInt8](repeating: 1, count: 16) + [4, 6, 20, 0] + [UInt8](repeating: 2, count: 16) + [0x7F, 0xFF, 4, 0]

    func write(_ dir: String, _ name: String, _ data: [UInt8]) throws {
        try Data([7, 0, 0, 0] + data).write(to: URL(fileURLWithPath: "\(dir)/\(name)-\(EFIBootManager.globalGUID)"))
    }

    @Test func theFirstActiveNonNetworkEntryAfterTheCurrentOneIsChosen() throws {
        let dir = try freshTemporaryDirectory("wyrcan-efi-boot")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(dir, "BootOrder", [0x00, 0, 0x01, 0, 0x99, 0, 0x02, 0, 0x03, 0, 0x04, 0])
        try write(dir, "BootCurrent", [0x99, 0])
        try write(dir, "Boot0000", Self.loadOption("UiApp", path: Self.firmwarePath))
        try write(dir, "Boot0001", Self.loadOption("UEFI PXEv4 (MAC:525400123456)", path: Self.pxePath))
        try write(dir, "Boot0099", Self.loadOption("HTTP boot", path: Self.diskPath))
        try write(dir, "Boot0002", Self.loadOption("Old disk", active: false, path: Self.diskPath))
        try write(dir, "Boot0003", Self.loadOption("UEFI QEMU HARDDISK", path: Self.diskPath))
        let manager = EFIBootManager(directory: dir)
        let entry = try manager.diskEntry()
        #expect(entry.number == 3 && entry.name == "Boot0003" && entry.description == "UEFI QEMU HARDDISK")
        try manager.setBootNext(entry.number)
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(dir)/BootNext-\(EFIBootManager.globalGUID)")) == Data([7, 0, 0, 0, 3, 0]))
        // Nothing but the network and itself: a clear refusal.
        try write(dir, "BootOrder", [0x01, 0, 0x99, 0])
        #expect(throws: EFIBootManager.BootManagerError.self) { try manager.diskEntry() }
    }
}
