import Testing
@testable import WyrcanChain

@Suite struct ConversionErrorTests {
    /// What the boot agent does not retry: faults of the image itself (its blobs are verified,
    /// so a second pull gives the same bytes: symlink loops and paths through a symlink to a
    /// file among them), a registry's final refusals, too little RAM. Network, registry and disk
    /// errors are retried.
    @Test func permanentErrorsAreTheImagesAndFinalRefusals() {
        let archive = ArchiveError(operation: "read", message: "truncated")
        let permanent: [ConversionError] = [
            .missingKernel, .kernelNotAFile("/boot/x"), .missingInit, .initNotExecutable(target: "/sbin/init", mode: 0o644),
            .initNotAFile("/x"), .cmdlineUnreadable("is not UTF-8 text"), .symlinkLoop("/a"), .unsafePath(layer: 0, path: "../x"),
            .danglingHardlink(layer: 1, path: "b", target: "a"), .notADirectory(layer: 0, path: "lib/x", target: "usr/lib"),
            .archive(archive), .notEnoughMemory(needed: 2 << 30, available: 1 << 30),
            .registry(.noPlatform(image: "x", platform: Platform(os: "linux", architecture: "riscv64"), available: ["linux/amd64"])),
            .registry(.unauthorized(registry: "r", detail: "denied")),
        ]
        let transient: [ConversionError] = [
            .registry(.http(status: 503, url: "http://r/v2/", detail: "")),
            .registry(.notFound(what: "r/x:1")),
            .layer(index: 0, digest: "sha256:00", archive),
            .file(FileError(operation: "write", path: "/tmp/x", code: 28)),
        ]
        for error in permanent { #expect(error.isPermanent, "\(error)") }
        for error in transient { #expect(!error.isPermanent, "\(error)") }
    }
}
