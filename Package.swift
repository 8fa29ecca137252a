// swift-tools-version:6.0
// Wyrcan: boot bare-metal fleets straight into container images.
import PackageDescription

let package = Package(
    name: "Wyrcan",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "WyrcanChain", targets: ["WyrcanChain"]),
        .library(name: "WyrcanFleet", targets: ["WyrcanFleet"]),
        .executable(name: "wyrcan", targets: ["WyrcanBoot"]),
        .executable(name: "wyrcan-serve", targets: ["WyrcanServe"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        // Only wyrcan-serve uses Yams (it links full Foundation; the boot agent must not).
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        // C libraries, each reached only through its wrapper in WyrcanChain/Platform.
        .systemLibrary(
            name: "CCurl", path: "Sources/CCurl", pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]),
        // No pkgConfig: it would add -larchive (the shared library); WyrcanChain links it statically.
        .systemLibrary(
            name: "CArchive", path: "Sources/CArchive",
            providers: [.apt(["libarchive-dev"])]),
        .systemLibrary(
            name: "COpenSSL", path: "Sources/COpenSSL", pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]),
        .systemLibrary(
            name: "CMicroHTTPD", path: "Sources/CMicroHTTPD", pkgConfig: "libmicrohttpd",
            providers: [.apt(["libmicrohttpd-dev"])]),

        // libzstd, already linked for libarchive's zstd filter: the frame compressor keeps its
        // contexts across frames (FrameCompressor, Platform/ZstdFrameEncoder.swift).
        .systemLibrary(
            name: "CZstd", path: "Sources/CZstd", pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"])]),

        // zlib (linked) and ISA-L's igzip types (libisal.so.2 is loaded at run time, see
        // Platform/GzipInflater.swift): gzip layers inflate with ISA-L where present, else zlib.
        .systemLibrary(
            name: "CInflate", path: "Sources/CInflate",
            providers: [.apt(["zlib1g-dev", "libisal-dev"])]),

        // SQLite for wyrcan-serve's state store (Server/State): its C API is synchronous, like the
        // server's worker threads; the boot agent does not link it.
        .systemLibrary(
            name: "CSQLite", path: "Sources/CSQLite", pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]),

        // Linux syscalls and ioctls for the boot agent (kexec, modules, efivarfs flags).
        .systemLibrary(name: "CWyrcanSys", path: "Sources/CWyrcanSys"),

        .target(
            name: "WyrcanChain",
            dependencies: [
                "CCurl", "CArchive", "COpenSSL", "CZstd", "CInflate", "CWyrcanSys",
                .product(name: "Logging", package: "swift-log"),
            ],
            linkerSettings: [
                // libarchive from Debian's libarchive-dev, statically: only the tar reader and the
                // cpio writer are linked in, not the XAR reader that needs libxml2 + ICU, which
                // would triple the boot initramfs. Its codecs stay shared libraries.
                .linkedLibrary(":libarchive.a"),
                .linkedLibrary(":libacl.so.1"), .linkedLibrary("lzma"), .linkedLibrary("zstd"), .linkedLibrary(":liblz4.so.1"),
                .linkedLibrary("bz2"), .linkedLibrary("z"), .linkedLibrary("nettle"),
            ]),
        // The HTTP server (libmicrohttpd + GnuTLS) for wyrcan-serve only: the boot agent never
        // serves, so it does not carry these libraries in its initramfs.
        .target(name: "WyrcanHTTP", dependencies: ["CMicroHTTPD"]),
        .executableTarget(
            name: "WyrcanBoot",
            dependencies: [
                "WyrcanChain",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/WyrcanBoot"),
        // The fleet's inventory and what each host gets from it (cmdlines, iPXE scripts): a
        // library of its own, so that the fuzzers (Fuzz/) reach the loader.
        .target(name: "WyrcanFleet", dependencies: ["WyrcanChain", "Yams"]),
        .executableTarget(
            name: "WyrcanServe",
            dependencies: [
                "WyrcanChain", "WyrcanFleet", "WyrcanHTTP", "CSQLite", "Yams",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/WyrcanServe"),

        // What the test targets share: a tar writer for layers no ordinary tool writes.
        .target(name: "WyrcanTestSupport", path: "Tests/Support"),
        .testTarget(name: "WyrcanChainTests", dependencies: ["WyrcanChain", "WyrcanHTTP", "WyrcanTestSupport"]),
        // Runs the built executables as a user would; depending on them makes `swift test` build them.
        .testTarget(name: "WyrcanBootTests", dependencies: ["WyrcanChain", "WyrcanBoot", "WyrcanServe"]),
        .testTarget(name: "WyrcanServeTests", dependencies: ["WyrcanServe", "WyrcanFleet", "WyrcanChain"]),
        // Real peers on loopback: docker-registry, umoci, skopeo, an unreliable registry.
        .testTarget(
            name: "WyrcanSystemTests", dependencies: ["WyrcanChain", "WyrcanHTTP", "WyrcanBoot", "WyrcanServe", "WyrcanTestSupport"],
            exclude: ["../Fixtures"]),
    ]
)
