import ICE
import DTLSSRTP
import MeshNode
import RTP
import SDP
import NIOCore
import Testing
import TestSupport
import STUN
import TURNServer

/// DTLS-SRTP through our in-process TURN server with relay-only agents, and across an ICE
/// restart.
@Suite("DTLS-SRTP over TURN and across ICE restart", .serialized, .timeLimit(.minutes(2)))
struct DTLSSRTPRelayAndRestartTests {
    /// Our TURN server on 127.0.0.1 (UDP only, user `u`/`p`), relaying to loopback peers,
    /// which it refuses by default. Relay ports lie above the ephemeral range.
    static func startTURN(relayPorts: ClosedRange<Int> = 61_000...61_999) async throws -> (TURNServer, ICEAgentConfiguration.TURNServer) {
        var configuration = TURNServerConfiguration()
        configuration.bindAddresses = ["127.0.0.1"]
        configuration.port = 0
        configuration.tlsPort = nil
        configuration.users = ["u": "p"]
        configuration.relayPorts = relayPorts
        configuration.peerPolicy = PeerAddressPolicy(allow: [CIDR(string: "127.0.0.0/8")!])
        let server = TURNServer(configuration: configuration)
        try await server.start()
        let listener = try #require(server.listeners.first { $0.transport == .udp })
        let port = UInt16(try #require(listener.address.port))
        return (server, ICEAgentConfiguration.TURNServer(host: "127.0.0.1", port: port, username: "u", password: "p"))
    }

    @Test("relay-only agents through our TURN server (UDP) complete DTLS and carry SRTP both ways")
    func relayOnly() async throws {
        let (server, entry) = try await Self.startTURN()
        let turn = [entry]

        let pair = try await TransportPair.make(
            profilesB: [.aes128CMHMACSHA1_80],
            iceA: .init(role: .controlling, turnServers: turn, relayOnly: true, localAddresses: ["127.0.0.1"]),
            iceB: .init(role: .controlled, turnServers: turn, relayOnly: true, localAddresses: ["127.0.0.1"]))
        try await pair.start()
        #expect(try await withTimeout("A connected") { try await pair.a.transport.connected() } == .aes128CMHMACSHA1_80)
        #expect(try await withTimeout("B connected") { try await pair.b.transport.connected() } == .aes128CMHMACSHA1_80)
        try await deliverRTP("relayed from A", ssrc: 0xA, from: pair.a, to: pair.b)
        try await deliverRTP("relayed from B", ssrc: 0xB, from: pair.b, to: pair.a)
        try await deliverRTCP(ssrc: 0xA, from: pair.a, to: pair.b)

        let selected = try #require(try await pair.a.agent.selectedPair())
        #expect(selected.local.kind == .relay)
        #expect(pair.a.snapshot.candidates.allSatisfy { $0.kind == .relay })
        #expect(pair.b.snapshot.candidates.allSatisfy { $0.kind == .relay })
        print("relay-only DTLS-SRTP: pair \(selected), handshake \(pair.a.transport.statistics.handshakeDuration.map { "\($0.inMilliseconds) ms" } ?? "-")")
        await pair.shutdown()
        await server.stop()
    }

    /// RFC 8445 §9 / RFC 8829 §5.2.1: an ICE restart changes the path, not the DTLS
    /// association; SRTP continues with the same keys (no second handshake). The break of the
    /// old path itself is not emulated: libnice keeps one relay candidate per local base (a
    /// second TURN server's relay is dropped as redundant), so no second relay path exists to
    /// fall back to, and a host path cannot be cut on loopback without namespaces or nftables.
    @Test("SRTP keeps flowing across an ICE restart without a new DTLS handshake")
    func iceRestart() async throws {
        let pair = try await TransportPair.make()
        try await pair.start()
        let profile = try await withTimeout("A connected") { try await pair.a.transport.connected() }
        _ = try await withTimeout("B connected") { try await pair.b.transport.connected() }
        try await deliverRTP("before restart", ssrc: 0x10, from: pair.a, to: pair.b, firstSequence: 1)
        let handshakes = (pair.a.transport.statistics.dtlsDatagramsSent, pair.b.transport.statistics.dtlsDatagramsSent)
        let pairsBefore = (pair.a.snapshot.pairs.count, pair.b.snapshot.pairs.count)

        let newA = try await pair.a.agent.restart()
        let newB = try await pair.b.agent.restart()
        try await pair.b.agent.setRemoteCredentials(newA)
        try await pair.a.agent.setRemoteCredentials(newB)
        for candidate in try await pair.a.agent.localCandidates() { try await pair.b.agent.addRemoteCandidate(candidate) }
        for candidate in try await pair.b.agent.localCandidates() { try await pair.a.agent.addRemoteCandidate(candidate) }
        try await pair.a.agent.endOfRemoteCandidates()
        try await pair.b.agent.endOfRemoteCandidates()
        try await pair.a.wait(for: "a new pair after restart") { $0.pairs.count > pairsBefore.0 }
        try await pair.b.wait(for: "a new pair after restart") { $0.pairs.count > pairsBefore.1 }

        try await deliverRTP("after restart A", ssrc: 0x10, from: pair.a, to: pair.b, firstSequence: 500)
        try await deliverRTP("after restart B", ssrc: 0x20, from: pair.b, to: pair.a, firstSequence: 1)
        #expect(pair.a.transport.profile == profile)
        // No new handshake: no DTLS datagram was sent after the first one completed.
        #expect(pair.a.transport.statistics.dtlsDatagramsSent == handshakes.0)
        #expect(pair.b.transport.statistics.dtlsDatagramsSent == handshakes.1)
        await pair.shutdown()
    }
}
