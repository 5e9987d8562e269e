import Foundation
import MeshNode
import Signaling
import Testing
import TestSupport

/// Node links over `wss://` (issue 13, item 1): a link that pins the other node's certificate
/// (`#sha256=` in the link URL) is refused, with a reason naming both fingerprints, when the
/// node there presents another certificate (a machine in the middle, or the wrong node), and
/// comes up when the fingerprint is right; the node-key check of the link handshake stays on top.
@Suite(.serialized, .timeLimit(.minutes(2))) struct WSSLinkTests {
    @Test func aWrongPinnedFingerprintIsRefusedTheRightOneLinks() async throws {
        let east = try await MeshNodeServer(["--https"], bind: ["127.0.0.1"])
        defer { east.stop() }
        guard let line = east.process.output.split(separator: "\n").first(where: { $0.contains("tls sha256:") }) else {
            throw TestFailure("no fingerprint in east's banner")
        }
        let fingerprint = String(line.split(separator: " ").last!)
        let eastAddress = "127.0.0.1:\(east.httpPort)"
        let url = "wss://\(eastAddress)/ws"

        // The attacker's view: the link pins a certificate that is not the one presented
        // (one byte changed), as when something else answers at east's address.
        var wrong = Array(fingerprint)
        wrong[0] = wrong[0] == "A" ? "B" : "A"
        let misled = try await MeshNodeServer(["--link", url + "#sha256=" + String(wrong)], bind: ["127.0.0.1"])
        defer { misled.stop() }
        try await misled.process.waitForOutput("node link refused: TLS")
        let refusal = misled.process.output
        #expect(refusal.contains("has SHA-256 \(fingerprint)"))
        #expect(refusal.contains("the link pins \(String(wrong))"))
        #expect(refusal.contains("forbidden"))
        #expect(try await !misled.meshStatus().links.contains(eastAddress))

        // The right pin (with or without colons): the link comes up and east knows west.
        let west = try await MeshNodeServer(["--link", url + "#sha256=" + fingerprint.replacingOccurrences(of: ":", with: "")],
                                            bind: ["127.0.0.1"])
        defer { west.stop() }
        try await waitUntil("west links to east over wss", interval: .milliseconds(100)) {
            (try? await west.meshStatus().links.contains(eastAddress)) == true
        }
        #expect(!west.process.output.contains("node link refused"))
    }

    /// Dial-back (`prove`/`proof`) reaches a node that speaks only TLS on its web port: without
    /// it, every link an https node accepted would stay unproven (mesh messages only).
    @Test func dialBackProvesAnHTTPSNodeAndAPlainOne() async throws {
        let secure = try await MeshNodeServer(["--https"], bind: ["127.0.0.1"])
        defer { secure.stop() }
        let plain = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { plain.stop() }
        let prover = NodeProver.webSocket(timeout: .seconds(5), logger: .init(label: "test"))
        for node in [secure, plain] {
            let outcome = await prover.prove("127.0.0.1:\(node.httpPort)")
            guard case .proven = outcome else { throw TestFailure("127.0.0.1:\(node.httpPort) not proven: \(outcome)") }
        }
        // Nothing listening: a failure, within the timeout.
        let closed = try await MeshNodeServer([], bind: ["127.0.0.1"])
        let port = closed.httpPort
        closed.stop()
        let outcome = await prover.prove("127.0.0.1:\(port)")
        guard case .failed = outcome else { throw TestFailure("a closed port proved: \(outcome)") }
    }

    @Test func malformedPinsAndUnpinnedAddressesAreRefused() async throws {
        // At the settings: a pin that is not 64 hex digits, or on a ws:// URL.
        for bad in ["wss://127.0.0.1:1/ws#sha256=ABCD", "ws://127.0.0.1:1/ws#sha256=" + String(repeating: "00", count: 32),
                    "wss://127.0.0.1:1/ws#md5=00"] {
            #expect(throws: SignalingError.self) { try LinkTLS.split(bad) }
        }
        // …and the node refuses them at start, naming the setting.
        var settings = NodeSettings()
        settings.link = ["wss://127.0.0.1:1/ws#sha256=ABCD"]
        let error = #expect(throws: NodeConfigurationError.self) { try NodeConfiguration(settings) }
        #expect(error?.key == "link" && error?.reason.contains("64 hex digits") == true)
        let pinned = try LinkTLS.split("wss://node.example:443/ws#sha256=" + String(repeating: "ab:", count: 31) + "ab")
        #expect(pinned.url == "wss://node.example:443/ws" && pinned.pin == [UInt8](repeating: 0xAB, count: 32))
        // A CA vouches for names: a wss:// link to an address without a pin is refused with a reason.
        let east = try await MeshNodeServer(["--https"], bind: ["127.0.0.1"])
        defer { east.stop() }
        let west = try await MeshNodeServer(["--link", "wss://127.0.0.1:\(east.httpPort)/ws"], bind: ["127.0.0.1"])
        defer { west.stop() }
        try await west.process.waitForOutput("needs the node's DNS name")
    }
}
