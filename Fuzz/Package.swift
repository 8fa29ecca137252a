// swift-tools-version:6.0
// libFuzzer targets for Wyrcan's parsers of untrusted input, built apart from the main package
// (every module instrumented): scripts/fuzz TARGET [SECONDS]. See docs/development.md.
import PackageDescription

let package = Package(
    name: "WyrcanFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "Wyrcan", path: "..")],
    targets: [
        .target(name: "FuzzDriver", path: "Sources/FuzzDriver"),
        // A layer (tar, any compression) converted into an initrd: header reading, the tree
        // merge (whiteouts, hard links, symlinked parents), the boot checks, the cpio writer.
        .executableTarget(name: "fuzz-layer", dependencies: ["FuzzDriver", .product(name: "WyrcanChain", package: "Wyrcan")], path: "Sources/fuzz-layer"),
        // A kernel cmdline: the tokenizer, WyrcanArgs, the chain decoding, the next cmdline.
        .executableTarget(name: "fuzz-cmdline", dependencies: ["FuzzDriver", .product(name: "WyrcanChain", package: "Wyrcan")], path: "Sources/fuzz-cmdline"),
        // An inventory file: YAML, the loader's checks, every host rendered.
        .executableTarget(name: "fuzz-inventory", dependencies: ["FuzzDriver", .product(name: "WyrcanFleet", package: "Wyrcan")], path: "Sources/fuzz-inventory"),
    ]
)
