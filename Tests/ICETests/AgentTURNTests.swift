import ICE
import Testing
import TestSupport
import TURNServer

/// TURN relaying through a TURN server on 127.0.0.1 (RFC 8656; RFC 8445 §5.1.1.2 relay
/// candidates).
@Suite("ICE agent with a TURN server", .serialized, .timeLimit(.minutes(1)))
struct AgentTURNTests {
    private func turnConfig(_ server: any TestTURNServer) -> ICEAgentConfiguration.TURNServer {
        .init(host: server.host, port: server.port, username: server.username, password: server.password)
    }

    @Test("an agent with a TURN server gathers a relay candidate")
    func gathersRelay() async throws {
        let server = try await startTestTURNServer()
        defer { server.stop() }
        let config = ICEAgentConfiguration(turnServers: [turnConfig(server)], localAddresses: ["127.0.0.1"])
        let agent = try await ICEAgent(configuration: config)
        let probe = AgentProbe(agent, name: "A")
        probe.start(trickleTo: nil)
        let start = ContinuousClock.now
        try await agent.gather()
        try await probe.wait(for: "a relay candidate") { $0.candidates.contains { $0.kind == .relay } }
        let relay = try #require(probe.snapshot.candidates.first { $0.kind == .relay })
        print("relay candidate after \((ContinuousClock.now - start).inMilliseconds) ms: \(relay.sdp)")
        #expect(relay.address == "127.0.0.1" && relay.transport == .udp)
        #expect(relay.port != server.port)
        try await probe.wait(for: "gathering done") { $0.gatheringDone }
        // Closing deallocates on the server (zero-lifetime refresh) and must not hang.
        let closing = ContinuousClock.now
        try await withTimeout("close with a TURN allocation") { await agent.close() }
        print("close with a TURN allocation: \((ContinuousClock.now - closing).inMilliseconds) ms")
        probe.stop()
    }

    @Test("wrong TURN credentials give no relay candidate, and gathering still ends")
    func wrongCredentials() async throws {
        let server = try await startTestTURNServer()
        defer { server.stop() }
        let turn = ICEAgentConfiguration.TURNServer(host: server.host, port: server.port, username: server.username, password: "wrong")
        let agent = try await ICEAgent(configuration: ICEAgentConfiguration(turnServers: [turn], localAddresses: ["127.0.0.1"]))
        let probe = AgentProbe(agent, name: "A")
        probe.start(trickleTo: nil)
        try await agent.gather()
        try await probe.wait(for: "gathering done") { $0.gatheringDone }
        #expect(!probe.snapshot.candidates.contains { $0.kind == .relay })
        await agent.close()
        probe.stop()
    }

    @Test("relay-only agents reach the TURN server over TCP (for UDP-blocked networks) and exchange data")
    func relayOnlyOverTCP() async throws {
        let server = try await startTestTURNServer()
        defer { server.stop() }
        var turn = turnConfig(server)
        turn.transport = .tcp
        let (a, b, elapsed) = try await connect(.loopback(turn: [turn], relayOnly: true))
        defer { a.stop(); b.stop() }
        try await deliver("TURN/TCP from A", from: a, to: b)
        try await deliver("TURN/TCP from B", from: b, to: a)
        let pairA = try #require(try await a.agent.selectedPair())
        print("relay-only over TURN/TCP connect: \(elapsed.inMilliseconds) ms, A: \(pairA)")
        // The relayed transport address itself is UDP (RFC 8656); only the client-server leg is TCP.
        #expect(pairA.local.kind == .relay && pairA.local.transport == .udp)
        await a.agent.close()
        await b.agent.close()
    }

    @Test("relay-only agents reach the TURN server's TLS port (libnice speaks plain TCP there) and exchange data")
    func relayOnlyOverTLS() async throws {
        let server = try await startTestTURNServer(tls: true)
        defer { server.stop() }
        var turn = turnConfig(server)
        turn.transport = .tls
        turn.port = try #require(server.tlsPort)
        let (a, b, elapsed) = try await connect(.loopback(turn: [turn], relayOnly: true))
        defer { a.stop(); b.stop() }
        try await deliver("TURN/TLS from A", from: a, to: b)
        try await deliver("TURN/TLS from B", from: b, to: a)
        let pairA = try #require(try await a.agent.selectedPair())
        print("relay-only over TURN/TLS connect: \(elapsed.inMilliseconds) ms, A: \(pairA)")
        #expect(pairA.local.kind == .relay)
        await a.agent.close()
        await b.agent.close()
    }

    @Test("two relay-only agents connect through the TURN server and exchange data")
    func relayOnlyConnects() async throws {
        let server = try await startTestTURNServer()
        defer { server.stop() }
        let (a, b, elapsed) = try await connect(.loopback(turn: [turnConfig(server)], relayOnly: true))
        defer { a.stop(); b.stop() }
        try await deliver("through the relay from A", from: a, to: b)
        try await deliver("through the relay from B", from: b, to: a)
        let pairA = try #require(try await a.agent.selectedPair())
        let pairB = try #require(try await b.agent.selectedPair())
        print("relay-only connect: \(elapsed.inMilliseconds) ms, A: \(pairA), B: \(pairB)")
        #expect(pairA.local.kind == .relay && pairB.local.kind == .relay)
        #expect(a.snapshot.candidates.allSatisfy { $0.kind == .relay })
        #expect(b.snapshot.candidates.allSatisfy { $0.kind == .relay })
        await a.agent.close()
        await b.agent.close()
    }
}
