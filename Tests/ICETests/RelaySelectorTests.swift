import NIOCore
import NIOPosix
import Testing
@testable import ICE
import TURNServer

/// Issue 8, "Relay choice": relays ordered by measured STUN round trip, full ones skipped.
@Suite(.serialized) struct RelaySelectorTests {
    func ranked(_ id: String, _ ms: Int?) -> RelaySelector.Ranked {
        RelaySelector.Ranked(candidate: .init(id: id, stun: try! SocketAddress(ipAddress: "127.0.0.1", port: 1)),
                             rtt: ms.map { .milliseconds($0) }, answered: ms == nil ? 0 : 3, sent: 3)
    }

    @Test func ordersByRoundTripAndPutsSilentOnesLastOrDropsThem() {
        let input = [ranked("far", 40), ranked("silent", nil), ranked("near", 5), ranked("mid", 20)]
        #expect(RelaySelector.order(input, keepUnanswered: true).map(\.candidate.id) == ["near", "mid", "far", "silent"])
        #expect(RelaySelector.order(input, keepUnanswered: false).map(\.candidate.id) == ["near", "mid", "far"])
    }

    @Test func measuresRealServersSkipsFullOnesAndBoundsTheTime() async throws {
        var configuration = TURNServerConfiguration()
        configuration.bindAddresses = ["127.0.0.1"]
        configuration.port = 0
        configuration.tlsPort = nil
        let server = TURNServer(configuration: configuration)
        try await server.start()
        defer { Task { await server.stop() } }
        let address = try #require(server.listeners.first { $0.transport == .udp }?.address)
        // A port nobody answers on.
        let silent = try SocketAddress(ipAddress: "127.0.0.1", port: 9)
        let candidates = [
            RelaySelector.Candidate(id: "silent", stun: silent),
            RelaySelector.Candidate(id: "full", stun: address, load: 10, capacity: 10),
            RelaySelector.Candidate(id: "ours", stun: address, load: 1, capacity: 10),
        ]
        let selector = RelaySelector(probes: 2, timeout: .milliseconds(300), keepUnanswered: true)
        let start = ContinuousClock.now
        let result = await selector.rank(candidates)
        // Bounded: two rounds of 300 ms for the silent one; a loaded 2-core machine (the full
        // suite in parallel) has been seen to add over a second of scheduling to that.
        #expect(ContinuousClock.now - start < selector.timeLimit + .seconds(3))
        #expect(result.map(\.candidate.id) == ["ours", "silent"])
        #expect(result[0].answered == 2 && result[0].rtt != nil)
        #expect(result[1].rtt == nil)
    }

    @Test func tcpProbeGetsABindingAnswer() async throws {
        var configuration = TURNServerConfiguration()
        configuration.bindAddresses = ["127.0.0.1"]
        configuration.port = 0
        configuration.tlsPort = nil
        let server = TURNServer(configuration: configuration)
        try await server.start()
        defer { Task { await server.stop() } }
        let address = try #require(server.listeners.first { $0.transport == .tcp }?.address)
        let result = await STUNProbe.tcp(address, timeout: .seconds(2))
        #expect(result.answered, "\(result.failure ?? "")")
        #expect(result.mapped?.ipAddress == "127.0.0.1")
        let refused = await STUNProbe.tcp(try SocketAddress(ipAddress: "127.0.0.1", port: 9), timeout: .seconds(1))
        #expect(!refused.answered && refused.failure != nil)
    }
}
