import Foundation
import Testing
import TestSupport

/// coturn's `turnutils_uclient` relays through `meshnode serve` to a `turnutils_peer` echo
/// peer on loopback, over every client transport, with channels and with Send indications,
/// and in RFC 6062 TCP-relay mode. Each run must report zero loss (for RFC 6062, of bytes).
@Suite(.serialized, .enabled(if: Tools.coturnClients, "coturn's tools are installed by .ci/run"))
struct CoturnClientTests {
    static let modes: [(name: String, flags: [String], tls: Bool)] = [
        ("UDP with channels", [], false),
        ("UDP with Send indications", ["-s"], false),
        ("TCP with channels", ["-t"], false),
        ("TCP with Send indications", ["-t", "-s"], false),
        ("TLS with channels", ["-t", "-S"], true),
        ("TLS with Send indications", ["-t", "-S", "-s"], true),
        ("RFC 6062 TCP relay", ["-T"], false),
        ("RFC 6062 TCP relay over TLS", ["-T", "-S"], true),
    ]

    /// uclient's message size (`-l`).
    static let messageLength = 180

    @Test("turnutils_uclient relays with zero loss", arguments: 0..<modes.count)
    func uclientZeroLoss(mode index: Int) async throws {
        let mode = Self.modes[index]
        let server = try await MeshNodeServer(["--user", "alice:wonderland", "--allow-peer", "127.0.0.0/8"])
        defer { server.stop() }
        let (peer, peerPort) = try await CoturnTools.startPeer(address: "127.0.0.1")
        defer { peer.stop() }
        let port = mode.tls ? server.tlsPort : server.udpPort
        let report = try await CoturnTools.uclient(mode.flags + [
            "-p", "\(port)", "-u", "alice", "-w", "wonderland", "-e", "127.0.0.1", "-r", "\(peerPort)",
            "-n", "100", "-m", "4", "-l", "\(Self.messageLength)", "-z", "5", "127.0.0.1",
        ])
        #expect(report.sent >= 400, "\(mode.name): sent \(report.sent)")
        if mode.flags.contains("-T") {
            try await expectWholeStream(report, mode: mode.name, server: server, tls: mode.tls)
        } else {
            #expect(report.received == report.sent, "\(mode.name): received \(report.received) of \(report.sent)")
            #expect(report.lost == 0, "\(mode.name): lost \(report.lost)")
        }
        let metrics = try await server.metrics()
        #expect(metrics.contains("meshnode_turn_allocations_total"))
    }

    /// RFC 6062 relays a byte stream: every byte uclient wrote on one side came out on
    /// the other, and the relay's own counters say it read and handed on each of them, so a
    /// shortfall names its place: before the relay (uclient or the kernel), in it, or after it.
    ///
    /// uclient's message count is exact over plain TCP (it reads `-l` bytes at a time) but not
    /// over TLS: there it counts `record length / -l` whole messages per TLS record, so a record
    /// that ends inside a message (e.g. 256 bytes: 1 message counted, 76 bytes for nothing)
    /// reports a loss where no byte was lost. Bytes are the measure there.
    private func expectWholeStream(_ report: CoturnTools.UClientReport, mode: String, server: MeshNodeServer, tls: Bool) async throws {
        let expected = report.sent * Self.messageLength
        #expect(report.sentBytes == expected, "\(mode): uclient sent \(report.sent) messages but \(report.sentBytes) bytes")
        // The relay adds its per-loop tallies to /metrics about once a second.
        var relayed = (toPeer: 0, toClient: 0)
        let deadline = ContinuousClock.now + .seconds(5)
        repeat {
            relayed.toPeer = Int(try await server.metric(#"meshnode_turn_tcp_relayed_bytes_total{direction="to_peer"}"#) ?? 0)
            relayed.toClient = Int(try await server.metric(#"meshnode_turn_tcp_relayed_bytes_total{direction="to_client"}"#) ?? 0)
            if relayed.toPeer + relayed.toClient >= report.sentBytes { break }
            try await Task.sleep(for: .milliseconds(200))
        } while ContinuousClock.now < deadline
        let whereLost: String
        if relayed.toPeer + relayed.toClient < report.sentBytes {
            whereLost = "the relay read only \(relayed.toPeer + relayed.toClient) of them (to peers \(relayed.toPeer), to clients \(relayed.toClient)): lost before or in the relay's reads"
        } else {
            whereLost = "the relay read and handed on all of them (to peers \(relayed.toPeer), to clients \(relayed.toClient)): lost in the relay's writes or after them"
        }
        #expect(report.receivedBytes == report.sentBytes,
                "\(mode): uclient received \(report.receivedBytes) of \(report.sentBytes) bytes; \(whereLost)")
        #expect(relayed.toPeer + relayed.toClient == report.sentBytes,
                "\(mode): uclient sent \(report.sentBytes) bytes, the relay read \(relayed.toPeer) to peers and \(relayed.toClient) to clients")
        if !tls {
            #expect(report.received == report.sent && report.lost == 0,
                    "\(mode): uclient counted \(report.received) of \(report.sent) messages (lost \(report.lost)) with \(report.receivedBytes) of \(report.sentBytes) bytes")
        }
    }

    @Test("IPv6 relay (RFC 6156) to an IPv6 peer")
    func ipv6() async throws {
        let server = try await MeshNodeServer(["--user", "alice:wonderland", "--allow-peer", "::1/128"], bind: ["::1"])
        defer { server.stop() }
        let (peer, peerPort) = try await CoturnTools.startPeer(address: "::1")
        defer { peer.stop() }
        let report = try await CoturnTools.uclient([
            "-x", "-p", "\(server.udpPort)", "-u", "alice", "-w", "wonderland", "-e", "::1", "-r", "\(peerPort)",
            "-n", "50", "-m", "2", "-l", "180", "-z", "5", "::1",
        ])
        #expect(report.sent >= 100)
        #expect(report.received == report.sent)
        #expect(report.lost == 0)
    }

    @Test("TURN REST credentials from the shared secret")
    func restCredentials() async throws {
        let server = try await MeshNodeServer(["--turn-secret", "s3cret", "--allow-peer", "127.0.0.0/8"])
        defer { server.stop() }
        let (peer, peerPort) = try await CoturnTools.startPeer(address: "127.0.0.1")
        defer { peer.stop() }
        // -W: uclient derives EXPIRY:user and the HMAC password from the secret itself.
        let report = try await CoturnTools.uclient([
            "-W", "s3cret", "-u", "carol", "-p", "\(server.udpPort)", "-e", "127.0.0.1", "-r", "\(peerPort)",
            "-n", "50", "-m", "2", "-l", "100", "-z", "5", "127.0.0.1",
        ])
        #expect(report.sent >= 100)
        #expect(report.received == report.sent)
    }

    @Test("turnutils_stunclient gets its reflexive address")
    func stunClient() async throws {
        let server = try await MeshNodeServer([])
        defer { server.stop() }
        let run = try Subprocess("turnutils_stunclient", ["-p", "\(server.udpPort)", "127.0.0.1"])
        _ = await run.waitForExit()
        #expect(run.output.contains("UDP reflexive addr: 127.0.0.1:"), "\(run.output)")
    }
}
