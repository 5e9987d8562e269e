import ICE
import Testing
import TestSupport

/// ICE restart (RFC 8445 §9): both sides restart, exchange new credentials and
/// candidates, and reconnect.
@Suite("ICE agent restart", .serialized, .timeLimit(.minutes(1)))
struct AgentRestartTests {
    @Test("after connecting, a restart with new credentials reconnects and data flows")
    func restartReconnects() async throws {
        let (a, b, _) = try await connect(.loopback())
        defer { a.stop(); b.stop() }
        try await deliver("before restart", from: a, to: b)
        let oldA = try await a.agent.localCredentials()
        let oldB = try await b.agent.localCredentials()
        let pairsBefore = (a.snapshot.pairs.count, b.snapshot.pairs.count)

        let start = ContinuousClock.now
        // A initiates; B sees a new remote ufrag in the offer and restarts too.
        let newA = try await a.agent.restart()
        let newB = try await b.agent.restart()
        #expect(newA != oldA && newB != oldB)
        #expect(newA.ufrag != oldA.ufrag && newA.password != oldA.password)
        try await b.agent.setRemoteCredentials(newA)
        try await a.agent.setRemoteCredentials(newB)
        for candidate in try await a.agent.localCandidates() { try await b.agent.addRemoteCandidate(candidate) }
        for candidate in try await b.agent.localCandidates() { try await a.agent.addRemoteCandidate(candidate) }
        try await a.agent.endOfRemoteCandidates()
        try await b.agent.endOfRemoteCandidates()

        try await a.wait(for: "a new selected pair after restart") { $0.pairs.count > pairsBefore.0 && isUp($0) }
        try await b.wait(for: "a new selected pair after restart") { $0.pairs.count > pairsBefore.1 && isUp($0) }
        print("restart reconnect: \((ContinuousClock.now - start).inMilliseconds) ms")
        try await deliver("after restart A", from: a, to: b)
        try await deliver("after restart B", from: b, to: a)

        await a.agent.close()
        await b.agent.close()
    }
}
