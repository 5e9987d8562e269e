// swift-tools-version:6.1
import Foundation
import PackageDescription

/// One `.systemLibrary` target per C library; pkg-config finds the flags, apt names the package.
func systemLibrary(_ name: String, pkgConfig: String, apt: String) -> Target {
    .systemLibrary(name: name, pkgConfig: pkgConfig, providers: [.apt([apt])])
}

/// A product of swift-nio.
func nio(_ name: String) -> Target.Dependency { .product(name: name, package: "swift-nio") }

let package = Package(
    name: "meshnode",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "meshnode", targets: ["MeshNodeCLI"]),
        .executable(name: "media-bench", targets: ["MediaBench"]),
        .executable(name: "signaling-echo", targets: ["SignalingEcho"]),
        .executable(name: "room-bench", targets: ["RoomBench"]),
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
        // The lean `/ws` pipeline (Signaling/Server/Transport): HTTP/1 parts as HTTPTypes for
        // Hummingbird, next to NIOWebSocket's upgrader. Both already come with Hummingbird.
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.24.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.0.0"),
        // Cluster mode (docs/cluster.md): several members share one node's state in PostgreSQL.
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.0"),
    ],
    targets: [
        // C libraries, imported `internal` only by the layers that wrap them (docs/architecture.md).
        systemLibrary("CNice", pkgConfig: "nice", apt: "libnice-dev"),
        systemLibrary("COpenSSL", pkgConfig: "openssl", apt: "libssl-dev"),
        systemLibrary("CSRTP", pkgConfig: "libsrtp2", apt: "libsrtp2-dev"),
        systemLibrary("COpus", pkgConfig: "opus", apt: "libopus-dev"),
        systemLibrary("CVPX", pkgConfig: "vpx", apt: "libvpx-dev"),
        systemLibrary("CSodium", pkgConfig: "libsodium", apt: "libsodium-dev"),
        .systemLibrary(name: "CXCB", pkgConfig: "xcb-shm", providers: [.apt(["libxcb1-dev", "libxcb-shm0-dev"])]),
        // Wrappers for C macros and variadic functions, one per library family, so that a layer
        // links only the libraries it uses.
        .target(name: "CNiceShims", dependencies: ["CNice"]),
        .target(name: "COpenSSLShims", dependencies: ["COpenSSL"]),
        .target(name: "CCodecShims", dependencies: ["COpus", "CVPX"]),
        // Linux UDP batching (recvmmsg, sendmmsg, UDP GSO) and epoll for the TURN relay engine.
        .target(name: "CUDPShims"),

        // The layers, bottom up (docs/architecture.md has what each owns and must not import;
        // scripts/check-layers enforces it in CI).
        .target(name: "MeshCore"),
        .target(name: "STUN", dependencies: ["MeshCore", "COpenSSL", nio("NIOCore")]),
        // Self-signed TLS/DTLS identities (OpenSSL): the TURN server's TLS and the DTLS layer share them.
        .target(name: "Certificates", dependencies: ["MeshCore", "COpenSSLShims"]),
        .target(
            name: "TURNServer",
            dependencies: [
                "MeshCore", "STUN", "Certificates", "CUDPShims", nio("NIOCore"), nio("NIOPosix"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        .target(
            name: "ICE",
            dependencies: ["MeshCore", "STUN", "CNice", "CNiceShims", nio("NIOCore"), .product(name: "Logging", package: "swift-log")]
        ),
        .target(name: "SDP", dependencies: ["MeshCore"]),
        .target(name: "RTP", dependencies: ["MeshCore", nio("NIOCore")]),
        .target(name: "DTLSSRTP", dependencies: ["MeshCore", "SDP", "Certificates", "COpenSSL", "COpenSSLShims", "CSRTP", nio("NIOCore")]),
        .target(name: "Codecs", dependencies: ["MeshCore", "CCodecShims", "COpus", "CVPX", "CXCB", nio("NIOCore")]),
        .target(name: "Media", dependencies: ["MeshCore", "SDP", "RTP", "Codecs", nio("NIOCore")]),
        .target(
            name: "Signaling",
            dependencies: [
                "MeshCore", "STUN", "CSodium", nio("NIOCore"), nio("NIOWebSocket"),
                // Key backups (KeyBackup.swift): PBKDF2-SHA256 and AES-256-GCM, as the page's WebCrypto.
                "COpenSSL",
                // Links over wss:// (LinkTLS): a CA file or a pinned certificate.
                nio("NIOPosix"), nio("NIOTLS"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                nio("NIOHTTP1"), .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        // Cluster mode (docs/cluster.md): the hub's store and its cross-member router on PostgreSQL.
        .target(
            name: "SignalingCluster",
            dependencies: [
                "MeshCore", "Signaling", nio("NIOCore"), nio("NIOPosix"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
        .target(
            name: "MeshNode",
            dependencies: [
                "MeshCore", "STUN", "Certificates", "TURNServer", "ICE", "SDP", "RTP", "DTLSSRTP", "Codecs", "Media", "Signaling", "SignalingCluster",
                nio("NIOCore"), nio("NIOPosix"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                // HTTPS/WSS on the web port with a certificate reloaded on SIGHUP (WebTLS.swift).
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .executableTarget(
            name: "MeshNodeCLI",
            dependencies: [
                "MeshNode", "Signaling", "STUN", "ICE", "Codecs", "Media", nio("NIOCore"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            // jemalloc (Debian's libjemalloc2) instead of glibc's malloc for the whole process:
            // objects made on one thread and freed on another (the store's writer answers what
            // the event loops read, and the reverse) sent glibc to its slow paths — a fifth of
            // the event loops' time in _int_malloc and malloc_consolidate at 10,000 chats/s
            // (issue 17, bench/signaling/README.md). `MALLOC_CONF` tunes it at run time.
            linkerSettings: [.linkedLibrary("jemalloc", .when(platforms: [.linux]))]
        ),
        // The Swift side of `make bench-media` (bench/media/run): times our codecs and RTP code.
        .executableTarget(
            name: "MediaBench",
            dependencies: ["Codecs", "RTP", "Media", nio("NIOCore")],
            path: "bench/media/MediaBench"
        ),
        // The load side of `make bench-rooms` (bench/rooms/run): simulated room-call participants
        // (our ICE, DTLS-SRTP, SDP; media encoded once and replayed) against a forwarder or Janus.
        .executableTarget(
            name: "RoomBench",
            dependencies: ["MeshNode", "ICE", "DTLSSRTP", "SDP", "RTP", "Codecs", nio("NIOCore")],
            path: "bench/rooms/RoomBench"
        ),
        // The floor of `make bench-signaling` (bench/signaling/run): a plain NIO WebSocket echo.
        .executableTarget(
            name: "SignalingEcho",
            dependencies: [nio("NIOCore"), nio("NIOPosix"), nio("NIOHTTP1"), nio("NIOWebSocket")],
            path: "bench/signaling/EchoServer"
        ),

        // Tests: one target per layer, each depending on its layer (and on what it composes
        // with, for the integration targets). TestSupport holds what several of them share.
        .target(name: "TestSupport", dependencies: ["MeshCore", "Codecs", "RTP", nio("NIOCore")], path: "Tests/TestSupport"),
        .testTarget(name: "STUNTests", dependencies: ["STUN", "MeshCore", "TestSupport", nio("NIOCore")]),
        .testTarget(name: "TURNServerTests", dependencies: ["TURNServer", "STUN", "TestSupport", nio("NIOCore")]),
        .testTarget(name: "ICETests", dependencies: ["ICE", "STUN", "TURNServer", "TestSupport", nio("NIOCore"), nio("NIOEmbedded")]),
        .testTarget(name: "SDPTests", dependencies: ["SDP", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "RTPTests", dependencies: ["RTP", "TestSupport", nio("NIOCore")]),
        .testTarget(name: "DTLSSRTPTests", dependencies: ["DTLSSRTP", "SDP", "RTP", "Certificates", "TestSupport", nio("NIOCore")]),
        .testTarget(name: "CodecsTests", dependencies: ["Codecs", "TestSupport", nio("NIOCore")]),
        .testTarget(name: "MediaTests", dependencies: ["Media", "Codecs", "RTP", "SDP", "TestSupport", nio("NIOCore")]),
        .testTarget(name: "SignalingTests", dependencies: ["Signaling", "TestSupport", .product(name: "Logging", package: "swift-log"), nio("NIOCore")]),
        // Cluster mode against a real PostgreSQL (`make test-cluster` starts one; skipped without it).
        .testTarget(
            name: "SignalingClusterTests",
            dependencies: ["SignalingCluster", "Signaling", "TestSupport", .product(name: "Logging", package: "swift-log"),
                           .product(name: "PostgresNIO", package: "postgres-nio")]
        ),
        .testTarget(
            name: "MeshNodeTests",
            dependencies: ["MeshNode", "MeshCore", "ICE", "STUN", "TURNServer", "SDP", "RTP", "DTLSSRTP", "Codecs", "Media", "Signaling", "TestSupport", nio("NIOCore")]
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "MeshNode", "STUN", "TURNServer", "ICE", "Signaling", "Codecs", "Media", "SDP", "TestSupport",
                nio("NIOCore"), nio("NIOPosix"),
                // wss:// clients that trust a test CA, and TLS probes that read a node's certificate.
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                // A hostile WebSocket server of the tests' own (a node that relays logins).
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)

// `make fuzz` sets MESHNODE_FUZZ=1: it adds libFuzzer targets and instruments the parsers'
// module for coverage. Normal builds never see these flags.
if ProcessInfo.processInfo.environment["MESHNODE_FUZZ"] == "1" {
    // Each fuzz target links only the layer it fuzzes (and what that layer imports).
    let fuzzed: [(target: String, path: String, product: String, layer: [Target.Dependency])] = [
        ("FuzzSTUN", "fuzz/STUN", "fuzz-stun", ["STUN"]),
        // The RFC 7983 demultiplexer and what it feeds (DTLS records, SRTP/SRTCP).
        ("FuzzDemux", "fuzz/Demux", "fuzz-demux", ["DTLSSRTP"]),
        ("FuzzRTP", "fuzz/RTP", "fuzz-rtp", ["RTP"]),
        ("FuzzSDP", "fuzz/SDP", "fuzz-sdp", ["SDP"]),
        // The signaling message decoder (SignalingCodec): decode, and round trip what decodes;
        // the WebSocket frame reader: the same messages however the bytes are cut.
        ("FuzzSignaling", "fuzz/Signaling", "fuzz-signaling", ["Signaling"]),
    ]
    let instrumented = ["STUN", "DTLSSRTP", "RTP", "SDP", "Signaling"]
    for index in package.targets.indices where instrumented.contains(package.targets[index].name) {
        package.targets[index].swiftSettings = (package.targets[index].swiftSettings ?? []) + [.unsafeFlags(["-sanitize=fuzzer"])]
    }
    // SwiftPM links executables with `--defsym main=<Target>_main`; FuzzMain defines those
    // symbols and hands control to libFuzzer's driver.
    package.targets.append(.target(name: "FuzzMain", path: "fuzz/Main"))
    for fuzz in fuzzed {
        package.targets.append(.executableTarget(
            name: fuzz.target,
            dependencies: fuzz.layer + ["FuzzMain", nio("NIOCore")],
            path: fuzz.path,
            swiftSettings: [.unsafeFlags(["-parse-as-library", "-sanitize=fuzzer"])],
            linkerSettings: [.unsafeFlags(["-sanitize=fuzzer"])]
        ))
        package.products.append(.executable(name: fuzz.product, targets: [fuzz.target]))
    }
}
