// swift-tools-version:6.1
import Foundation
import PackageDescription

/// One `.systemLibrary` target per C library; pkg-config finds the flags, apt names the package.
func systemLibrary(_ name: String, pkgConfig: String, apt: String) -> Target {
    .systemLibrary(name: name, pkgConfig: pkgConfig, providers: [.apt([apt])])
}

let package = Package(
    name: "meshnode",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "meshnode", targets: ["MeshNodeCLI"]),
        .executable(name: "media-bench", targets: ["MediaBench"]),
        .library(name: "MeshNode", targets: ["MeshNode"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.30.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.1.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "5.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.0"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.10.0"),
    ],
    targets: [
        systemLibrary("CNice", pkgConfig: "nice", apt: "libnice-dev"),
        systemLibrary("COpenSSL", pkgConfig: "openssl", apt: "libssl-dev"),
        systemLibrary("CSRTP", pkgConfig: "libsrtp2", apt: "libsrtp2-dev"),
        systemLibrary("COpus", pkgConfig: "opus", apt: "libopus-dev"),
        systemLibrary("CVPX", pkgConfig: "vpx", apt: "libvpx-dev"),
        systemLibrary("CSodium", pkgConfig: "libsodium", apt: "libsodium-dev"),
        .systemLibrary(name: "CXCB", pkgConfig: "xcb-shm", providers: [.apt(["libxcb1-dev", "libxcb-shm0-dev"])]),
        .target(
            name: "CMeshShims",
            dependencies: ["CNice", "COpenSSL", "COpus", "CVPX"]
        ),
        .target(
            name: "ICE",
            dependencies: [
                "CMeshShims", "CNice", "COpenSSL",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        .target(
            name: "Signaling",
            dependencies: [
                "ICE", "CSodium",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
            ]
        ),
        .target(
            name: "Media",
            dependencies: [
                "ICE", "CMeshShims", "COpenSSL", "CSRTP", "COpus", "CVPX", "CXCB",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "MeshNode",
            dependencies: [
                "ICE", "Signaling", "Media",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .executableTarget(
            name: "MeshNodeCLI",
            dependencies: [
                "MeshNode", "Signaling", "Media",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The Swift side of `make bench-media` (bench/media/run): times our codecs and RTP code.
        .executableTarget(
            name: "MediaBench",
            dependencies: ["Media", .product(name: "NIOCore", package: "swift-nio")],
            path: "bench/media/MediaBench"
        ),
        // Helpers every test target shares (waits with deadlines, processes, tools, fixtures); it
        // depends on no target of ours.
        .target(
            name: "TestSupport",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            path: "Tests/TestSupport"
        ),
        .testTarget(
            name: "ICETests",
            dependencies: ["ICE", "TestSupport", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio")]
        ),
        .testTarget(name: "SignalingTests", dependencies: ["Signaling", "TestSupport", .product(name: "Logging", package: "swift-log")]),
        .testTarget(
            name: "MediaTests",
            dependencies: ["Media", "ICE", "TestSupport", .product(name: "NIOCore", package: "swift-nio")],
            exclude: ["Fixtures"]
        ),
        .testTarget(name: "MeshNodeTests", dependencies: ["MeshNode", "TestSupport"]),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "MeshNode", "ICE", "Signaling", "Media", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)

// `make fuzz` sets MESHNODE_FUZZ=1: it adds libFuzzer targets and instruments the parsers'
// module for coverage. Normal builds never see these flags.
if ProcessInfo.processInfo.environment["MESHNODE_FUZZ"] == "1" {
    let fuzzFlags: [SwiftSetting] = [.unsafeFlags(["-sanitize=fuzzer"])]
    for index in package.targets.indices where ["ICE", "Media", "Signaling"].contains(package.targets[index].name) {
        package.targets[index].swiftSettings = (package.targets[index].swiftSettings ?? []) + fuzzFlags
    }
    // SwiftPM links executables with `--defsym main=<Target>_main`; FuzzMain defines those
    // symbols and hands control to libFuzzer's driver.
    package.targets.append(.target(name: "FuzzMain", path: "fuzz/Main"))
    package.targets.append(.executableTarget(
        name: "FuzzSTUN",
        dependencies: ["ICE", "FuzzMain", .product(name: "NIOCore", package: "swift-nio")],
        path: "fuzz/STUN",
        swiftSettings: [.unsafeFlags(["-parse-as-library", "-sanitize=fuzzer"])],
        linkerSettings: [.unsafeFlags(["-sanitize=fuzzer"])]
    ))
    package.products.append(.executable(name: "fuzz-stun", targets: ["FuzzSTUN"]))
    // The RFC 7983 demultiplexer and what it feeds (DTLS records, SRTP/SRTCP), and the
    // RTP/RTCP header parsers.
    for (name, path, product) in [("FuzzDemux", "fuzz/Demux", "fuzz-demux"), ("FuzzRTP", "fuzz/RTP", "fuzz-rtp"), ("FuzzSDP", "fuzz/SDP", "fuzz-sdp")] {
        package.targets.append(.executableTarget(
            name: name,
            dependencies: ["Media", "FuzzMain", .product(name: "NIOCore", package: "swift-nio")],
            path: path,
            swiftSettings: [.unsafeFlags(["-parse-as-library", "-sanitize=fuzzer"])],
            linkerSettings: [.unsafeFlags(["-sanitize=fuzzer"])]
        ))
        package.products.append(.executable(name: product, targets: [name]))
    }
    // The signaling message decoder (SignalingCodec): decode, and round trip what decodes.
    package.targets.append(.executableTarget(
        name: "FuzzSignaling",
        dependencies: ["Signaling", "FuzzMain"],
        path: "fuzz/Signaling",
        swiftSettings: [.unsafeFlags(["-parse-as-library", "-sanitize=fuzzer"])],
        linkerSettings: [.unsafeFlags(["-sanitize=fuzzer"])]
    ))
    package.products.append(.executable(name: "fuzz-signaling", targets: ["FuzzSignaling"]))
}
