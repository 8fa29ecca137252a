import Foundation
import Testing
@testable import WyrcanChain

/// The stored config's format is the original Wyrcan's: existing machines must keep booting.
@Suite struct EFIVariableStoreTests {
    func directory(_ name: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wyrcan-efi-\(getpid())-\(name)").path
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func readsAVariableWrittenByTheOriginal() throws {
        let dir = try directory("original")
        // 4-byte attributes (7, little endian) + serde_json of the original's Config struct.
        let json = #"{"network":{"lan.network":{"Match":{"Name":"eth0"},"Network":{"DHCP":"yes"}}},"cmdline":["quiet log-buf-len=1M","print-fatal-signals=1"],"image":"registry.gitlab.com/wyrcan/debian:latest"}"#
        try Data([7, 0, 0, 0] + Array(json.utf8)).write(to: URL(fileURLWithPath: "\(dir)/Wyrcan-6987e713-a5ff-4ec2-ad55-c1fca471ed2d"))
        let stored = try #require(try EFIVariableStore(directory: dir).read())
        #expect(stored.image == "registry.gitlab.com/wyrcan/debian:latest")
        let args = try WyrcanArgs(parsing: try stored.cmdlineText())
        #expect(args.image?.repository == "wyrcan/debian")
        #expect(try args.nextCmdline() == "quiet log-buf-len=1M print-fatal-signals=1")
        #expect(args.network.files.first?.contents == "[Match]\nName=eth0\n\n[Network]\nDHCP=yes\n")
    }

    @Test func writeReadClear() throws {
        let dir = try directory("roundtrip")
        let store = EFIVariableStore(directory: dir)
        #expect(try store.read() == nil)
        let args = try WyrcanArgs(parsing: #"wyr.img=r.io/os wyr.arg="a b" wyr.arg=c wyr.net.lan.Network.DHCP=yes"#)
        try store.write(try StoredConfig(args: args))
        let bytes = try Data(contentsOf: URL(fileURLWithPath: store.path))
        #expect(Array(bytes.prefix(4)) == [7, 0, 0, 0])
        let back = try #require(try store.read())
        #expect(back == StoredConfig(image: "r.io/os:latest", cmdline: ["a b", "c"], network: ["lan.network": ["Network": ["DHCP": "yes"]]]))
        try store.write(StoredConfig(image: "r.io/other:latest", cmdline: [], network: [:]))
        #expect(try store.read()?.image == "r.io/other:latest")
        try store.clear()
        #expect(try store.read() == nil)
        #expect(!FileManager.default.fileExists(atPath: store.path))
    }

    @Test func insecureRegistriesAreStoredOnlyWhenGiven() throws {
        let dir = try directory("insecure")
        let store = EFIVariableStore(directory: dir)
        try store.write(try StoredConfig(args: try WyrcanArgs(parsing: "wyr.img=r.io/os")))
        #expect(!String(decoding: try Data(contentsOf: URL(fileURLWithPath: store.path)), as: UTF8.self).contains("insecure"))
        try store.write(try StoredConfig(args: try WyrcanArgs(parsing: "wyr.img=10.0.2.2:5000/os wyr.insecure=10.0.2.2:5000")))
        let stored = try #require(try store.read())
        #expect(stored.insecure == ["10.0.2.2:5000"])
        #expect(try WyrcanArgs(parsing: try stored.cmdlineText()).insecureRegistries == ["10.0.2.2:5000"])
    }

    @Test func refusesWhatTheFormatCannotHold() throws {
        let args = try WyrcanArgs(parsing: "wyr.img=r.io/os wyr.net.lan.Network.DNS=a wyr.net.lan.Network.DNS=b")
        #expect(throws: CmdlineError.self) { try StoredConfig(args: args) }
        #expect(throws: EFIVariableStore.StoreError.self) { try EFIVariableStore(directory: "/nonexistent/efivars").write(StoredConfig(image: "x", cmdline: [], network: [:])) }
    }

    @Test func corruptVariableIsAnError() throws {
        let dir = try directory("corrupt")
        try Data([7, 0, 0, 0] + Array("not json".utf8)).write(to: URL(fileURLWithPath: "\(dir)/Wyrcan-6987e713-a5ff-4ec2-ad55-c1fca471ed2d"))
        #expect(throws: EFIVariableStore.StoreError.self) { try EFIVariableStore(directory: dir).read() }
    }
}
