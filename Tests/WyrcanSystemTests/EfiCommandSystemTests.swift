import Foundation
import Testing

/// `wyrcan efi show|write|clear` against a directory standing in for efivarfs and a real
/// docker-registry: write validates the image first and never loses a stored config on error.
@Suite(.serialized) struct EfiCommandSystemTests {
    @Test func writeShowClear() throws {
        let work = try Sys.tempDir("efi-command")
        let vars = work + "/efivars"
        try FileManager.default.createDirectory(atPath: vars, withIntermediateDirectories: true)
        let registry = try LocalRegistry(name: "efi-command")
        try Sys.buildImage(ConvertSystemTests.small, layout: work + "/layout")
        try registry.push(layout: work + "/layout", tag: "small", to: "test/small")
        let host = registry.host

        let write = try Sys.wyrcan(["efi", "write", "--efivars", vars, "--cmdline", "console=ttyS0 wyr.img=\(host)/test/small:small wyr.insecure=\(host) wyr.arg=a=1"])
        #expect(write.status == 0, "\(write.stderr)")
        #expect(write.stderr.contains("\(host)/test/small:small resolves to sha256:"), "\(write.stderr)")
        #expect(write.stdout.contains("stored: wyr.img=\(host)/test/small:small"), "\(write.stdout)")
        let stored = try Sys.wyrcan(["efi", "show", "--efivars", vars])
        #expect(stored.status == 0 && stored.stdout.contains("wyr.img=\(host)/test/small:small") && stored.stdout.contains("wyr.arg=a=1"), "\(stored.stdout)")

        // An image the registry does not have, or a cmdline that does not parse: refused, and
        // the stored config is still the one from before.
        let missing = try Sys.wyrcan(["efi", "write", "--efivars", vars, "--cmdline", "wyr.img=\(host)/test/none:x wyr.insecure=\(host)"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("not found"), "\(missing.stderr)")
        #expect(missing.stderr.split(separator: "\n").count == 1, "\(missing.stderr)")
        let bad = try Sys.wyrcan(["efi", "write", "--efivars", vars, "--cmdline", "wyr.arg=\"unterminated"])
        #expect(bad.status == 1)
        // What the variable's format cannot hold (an `@N` section) is refused before any registry
        // is asked (this one does not exist: the error would be a connection failure).
        let unstorable = try Sys.wyrcan(["efi", "write", "--efivars", vars, "--cmdline",
                                         "wyr.img=127.0.0.1:1/not/there wyr.net.network.eth0.Address@1.Address=10.0.0.9/24"])
        #expect(unstorable.status == 1)
        #expect(unstorable.stderr.contains("do not fit the EFI variable's format"), "\(unstorable.stderr)")
        #expect(try Sys.wyrcan(["efi", "show", "--efivars", vars]).stdout == stored.stdout)

        // --no-check stores without asking the registry.
        let offline = try Sys.wyrcan(["efi", "write", "--efivars", vars, "--no-check", "--cmdline", "wyr.img=127.0.0.1:1/not/there"])
        #expect(offline.status == 0, "\(offline.stderr)")
        #expect(try Sys.wyrcan(["efi", "show", "--efivars", vars]).stdout.contains("wyr.img=127.0.0.1:1/not/there"))

        let clear = try Sys.wyrcan(["efi", "clear", "--efivars", vars])
        #expect(clear.status == 0 && clear.stdout.contains("cleared"), "\(clear.stderr)")
        #expect(try Sys.wyrcan(["efi", "show", "--efivars", vars]).stdout.contains("no Wyrcan config is stored"))
    }
}
