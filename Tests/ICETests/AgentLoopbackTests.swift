import ICE
import NIOCore
import Testing
import TestSupport

/// Two agents in one process, gathering only on 127.0.0.1 (RFC 8445 host candidates).
@Suite("ICE agent over loopback", .serialized, .timeLimit(.minutes(1)))
struct AgentLoopbackTests {
    @Test("two agents connect over 127.0.0.1 and exchange data both ways")
    func connectAndExchange() async throws {
        let (a, b, elapsed) = try await connect(.loopback())
        defer { a.stop(); b.stop() }

        try await deliver("ping from A", from: a, to: b)
        try await deliver("pong from B", from: b, to: a)

        let pairA = try #require(try await a.agent.selectedPair())
        let pairB = try #require(try await b.agent.selectedPair())
        // Host candidates on both sides; a peer-reflexive remote is possible when a check
        // arrives before the trickled candidate does (RFC 8445 §7.3.1.3).
        #expect(pairA.local.kind == .host)
        #expect([.host, .peerReflexive].contains(pairA.remote.kind))
        #expect(pairB.local.kind == .host)
        #expect(pairA.local.address == "127.0.0.1" && pairA.remote.address == "127.0.0.1")
        #expect(a.snapshot.candidates.allSatisfy { $0.address == "127.0.0.1" })
        print("loopback connect: \(elapsed.inMilliseconds) ms, A: \(pairA), B: \(pairB)")

        await a.agent.close()
        await b.agent.close()
        try await a.wait(for: "events to finish") { $0.finished }
        #expect(throws: ICEError.self) { try a.agent.send([1]) }
    }

    @Test("two agents that both start controlling resolve the role conflict and connect (RFC 8445 §7.3.1.1)")
    func roleConflict() async throws {
        var pair = ICEConfigurationPair.loopback()
        pair.controlled.role = .controlling
        let (a, b, elapsed) = try await connect(pair)
        defer { a.stop(); b.stop() }
        try await deliver("conflict resolved A", from: a, to: b)
        try await deliver("conflict resolved B", from: b, to: a)
        print("role-conflict connect: \(elapsed.inMilliseconds) ms")
        await a.agent.close()
        await b.agent.close()
    }

    @Test("two agents connect without trickle once all candidates are known")
    func withoutTrickle() async throws {
        var pair = ICEConfigurationPair.loopback()
        pair.controlling.trickle = false
        pair.controlled.trickle = false
        let (a, b, _) = try await connect(pair)
        defer { a.stop(); b.stop() }
        try await deliver("no trickle", from: a, to: b)
        await a.agent.close()
        await b.agent.close()
    }

    @Test("two agents connect over IPv6 loopback ::1")
    func connectIPv6() async throws {
        let (a, b, elapsed) = try await connect(.loopback(address: "::1"))
        defer { a.stop(); b.stop() }
        try await deliver("v6 ping", from: a, to: b)
        try await deliver("v6 pong", from: b, to: a)
        let pair = try #require(try await a.agent.selectedPair())
        print("IPv6 loopback connect: \(elapsed.inMilliseconds) ms, A: \(pair)")
        #expect(pair.local.address == "::1" && pair.remote.address == "::1")
        await a.agent.close()
        await b.agent.close()
    }

    @Test("sends racing close never crash; after close they fail with closed")
    func sendRacesClose() async throws {
        let (a, b, _) = try await connect(.loopback())
        defer { a.stop(); b.stop() }
        let agent = a.agent
        let senders = (0..<4).map { _ in
            Task.detached {
                for _ in 0..<2_000 { _ = try? agent.send(Array(repeating: 7, count: 100)) }
            }
        }
        try await Task.sleep(for: .milliseconds(5))
        await agent.close()
        for sender in senders { await sender.value }
        #expect { try agent.send([1]) } throws: { ($0 as? ICEError)?.code == .closed }
        await #expect { try await agent.gather() } throws: { ($0 as? ICEError)?.code == .closed }
        await agent.close()  // idempotent
        await b.agent.close()
    }

    @Test("an agent dropped without close tears itself down and finishes its events")
    func dropWithoutClose() async throws {
        var agent: ICEAgent? = try await ICEAgent(configuration: ICEAgentConfiguration(localAddresses: ["127.0.0.1"]))
        try await agent!.gather()
        let events = agent!.events
        agent = nil
        let finished = try await withTimeout("the event stream to finish") {
            for await _ in events {}
            return true
        }
        #expect(finished)
    }

    @Test("gathering on 127.0.0.1 yields one UDP host candidate and then gathering-done")
    func gatherHostCandidate() async throws {
        let agent = try await ICEAgent(configuration: ICEAgentConfiguration(localAddresses: ["127.0.0.1"]))
        let probe = AgentProbe(agent, name: "A")
        probe.start(trickleTo: nil)
        try await agent.gather()
        try await probe.wait(for: "gathering done") { $0.gatheringDone }
        let candidates = probe.snapshot.candidates
        #expect(candidates.count == 1)
        let host = try #require(candidates.first)
        #expect(host.kind == .host && host.transport == .udp && host.address == "127.0.0.1" && host.port != 0)
        #expect(try await agent.localCandidates() == candidates)
        // The SDP form round-trips through the parser.
        #expect(try ICECandidate(sdp: host.sdpAttribute) == host)
        let credentials = try await agent.localCredentials()
        #expect(credentials.ufrag.count >= 4 && credentials.password.count >= 22)
        await agent.close()
        probe.stop()
    }

    @Test("with ICE-TCP on, TCP host candidates (RFC 6544) are gathered and survive the SDP round trip")
    func iceTCPCandidates() async throws {
        var config = ICEAgentConfiguration(localAddresses: ["127.0.0.1"])
        config.iceTCP = true
        let agent = try await ICEAgent(configuration: config)
        let probe = AgentProbe(agent, name: "A")
        probe.start(trickleTo: nil)
        try await agent.gather()
        try await probe.wait(for: "gathering done") { $0.gatheringDone }
        let tcp = probe.snapshot.candidates.filter { $0.transport == .tcp }
        #expect(!tcp.isEmpty)
        #expect(tcp.allSatisfy { $0.tcpType != nil })
        #expect(tcp.filter { $0.tcpType == .active }.allSatisfy { $0.port == 9 })
        for candidate in probe.snapshot.candidates {
            #expect(try ICECandidate(sdp: candidate.sdp) == candidate)
        }
        print("ICE-TCP candidates: \(probe.snapshot.candidates.map(\.sdp))")
        await agent.close()
        probe.stop()
    }

    @Test("sending before a pair is selected fails with notConnected")
    func sendBeforeConnected() async throws {
        let agent = try await ICEAgent(configuration: ICEAgentConfiguration(localAddresses: ["127.0.0.1"]))
        #expect { try agent.send([1, 2, 3]) } throws: { ($0 as? ICEError)?.code == .notConnected }
        await agent.close()
    }

    @Test("servers and local addresses must be IP literals")
    func rejectsNames() async throws {
        var config = ICEAgentConfiguration(localAddresses: ["127.0.0.1"])
        config.stunServer = .init(host: "stun.example.org")
        await #expect { try await ICEAgent(configuration: config) } throws: {
            ($0 as? ICEError)?.code == .invalidConfiguration
        }
        let relayOnlyWithoutTURN = ICEAgentConfiguration(relayOnly: true, localAddresses: ["127.0.0.1"])
        await #expect { try await ICEAgent(configuration: relayOnlyWithoutTURN) } throws: {
            ($0 as? ICEError)?.code == .invalidConfiguration
        }
    }

    @Test("remote mDNS candidates are refused with a clear error")
    func refusesMDNS() async throws {
        let agent = try await ICEAgent(configuration: ICEAgentConfiguration(localAddresses: ["127.0.0.1"]))
        await #expect { try await agent.addRemoteCandidate(sdp: "candidate:1 1 udp 2122260223 1f4712db-ea17-4bcf-a596-105139dfd8bf.local 54321 typ host") } throws: {
            ($0 as? ICEError)?.code == .invalidCandidate
        }
        await agent.close()
    }
}
