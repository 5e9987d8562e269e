import NIOCore
import NIOPosix
import Testing
import TestSupport
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

    @Test func measuresARealServerAndSkipsAFullOne() async throws {
        var configuration = TURNServerConfiguration()
        configuration.bindAddresses = ["127.0.0.1"]
        configuration.port = 0
        configuration.tlsPort = nil
        let server = TURNServer(configuration: configuration)
        try await server.start()
        defer { Task { await server.stop() } }
        let address = try #require(server.listeners.first { $0.transport == .udp }?.address)
        let candidates = [
            RelaySelector.Candidate(id: "full", stun: address, load: 10, capacity: 10),
            RelaySelector.Candidate(id: "ours", stun: address, load: 1, capacity: 10),
        ]
        // A round ends as soon as every target answered: the generous timeout only matters on
        // a machine so busy that an answer is late.
        let selector = RelaySelector(probes: 2, timeout: .seconds(10), keepUnanswered: true)
        let result = await selector.rank(candidates)
        #expect(result.map(\.candidate.id) == ["ours"])
        #expect(result[0].answered == 2 && result[0].sent == 2 && result[0].rtt != nil)
    }

    /// A server that never answers costs one timeout per round and no more: `rank` returns
    /// with it measured as silent (kept last or left out), however slow the machine.
    @Test func aSilentServerIsGivenUpAfterItsRounds() async throws {
        // A port nobody answers on.
        let silent = RelaySelector.Candidate(id: "silent", stun: try SocketAddress(ipAddress: "127.0.0.1", port: 9))
        let keeping = RelaySelector(probes: 2, timeout: .milliseconds(300), keepUnanswered: true)
        let kept = try await withTimeout("rank with a silent server") { await keeping.rank([silent]) }
        #expect(kept.map(\.candidate.id) == ["silent"])
        #expect(kept[0].rtt == nil && kept[0].answered == 0 && kept[0].sent == 2)
        let dropping = RelaySelector(probes: 1, timeout: .milliseconds(300), keepUnanswered: false)
        #expect(try await withTimeout("rank with a silent server") { await dropping.rank([silent]) }.isEmpty)
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
        let result = await STUNProbe.tcp(address, timeout: .seconds(10))
        #expect(result.answered, "\(result.failure ?? "")")
        #expect(result.mapped?.ipAddress == "127.0.0.1")
        let refused = await STUNProbe.tcp(try SocketAddress(ipAddress: "127.0.0.1", port: 9), timeout: .seconds(1))
        #expect(!refused.answered && refused.failure != nil)
    }
}
