import ICE
import MeshCore
import NIOCore
import Synchronization
import Testing
import TestSupport

/// A peer that sends faster than the call reads must not grow the node's memory without limit:
/// the agent's stream bounds received packets and never drops control events (docs/security.md).
@Suite("ICE receive queue bound", .serialized, .timeLimit(.minutes(1)))
struct ReceiveQueueBoundTests {
    @Test("fed directly: past the bound data is dropped and counted, control events keep their order, reading resumes")
    func boundedStreamFedDirectly() async throws {
        let bound = 16
        let (events, producer) = BoundedEventStream<ICEAgentEvent>.makeStream(dataBound: bound, isData: \.isData)
        #expect(producer.yield(.stateChanged(.connected)) == .enqueued)
        var results: [BoundedEventStream<ICEAgentEvent>.YieldResult] = []
        for index in 0..<1000 { results.append(producer.yield(.dataReceived(ByteBuffer(integer: UInt32(index)), arrival: .now))) }
        #expect(producer.yield(.stateChanged(.failed)) == .enqueued)
        #expect(producer.yield(.gatheringDone) == .enqueued)
        #expect(results.prefix(bound).allSatisfy { $0 == .enqueued })
        #expect(results[bound] == .dropped(total: 1) && results.last == .dropped(total: 1000 - bound))
        // Logged at the first drop and at each doubling: 1, 2, 4, …, 512 of 984.
        #expect(results.filter(\.shouldReport).count == 10)
        #expect(events.queuedData == bound && events.droppedData == 1000 - bound)

        let drained = try await withTimeout("the queued events") {
            var iterator = events.makeAsyncIterator()
            var seen: [String] = []
            for _ in 0..<(bound + 3) {
                switch await iterator.next() {
                case .dataReceived(let buffer, _): seen.append("data \(buffer.getInteger(at: 0, as: UInt32.self) ?? 0)")
                case .stateChanged(let state): seen.append(state.rawValue)
                case .gatheringDone: seen.append("done")
                default: seen.append("other")
                }
            }
            return seen
        }
        // The oldest packets stay (as in a socket buffer), then the control events after the flood.
        #expect(drained == ["connected"] + (0..<bound).map { "data \($0)" } + ["failed", "done"])
        #expect(events.queuedData == 0)
        // Room again: new data is queued and read.
        #expect(producer.yield(.dataReceived(ByteBuffer(string: "after"), arrival: .now)) == .enqueued)
        producer.finish()
        let rest = try await withTimeout("the rest") { await events.reduce(into: [ICEAgentEvent]()) { $0.append($1) } }
        #expect(rest.count == 1 && events.droppedData == 1000 - bound)
    }

    @Test("a real peer floods an agent whose reader stalls: at most the bound is queued, a restart's events still arrive, reading resumes")
    func floodOverLoopback() async throws {
        let pair = ICEConfigurationPair.loopback()
        let a = try await ICEAgent(configuration: pair.controlling)
        let b = try await ICEAgent(configuration: pair.controlled)
        let probeA = AgentProbe(a, name: "A")
        let reader = StallingReader(b, peer: a)
        defer { probeA.stop(); reader.stop() }
        try await b.setRemoteCredentials(a.localCredentials())
        try await a.setRemoteCredentials(b.localCredentials())
        probeA.start(trickleTo: b)
        reader.start()
        try await a.gather()
        try await b.gather()
        try await probeA.wait(for: "a selected pair", isUp)
        try await waitUntil("B to connect") { reader.snapshot.contains("pair") && reader.isUp }

        // The attacker: B's reader stops, A sends far more than the bound.
        reader.pause()
        let pausedAt = reader.snapshot.count
        let bound = ICEAgent.receiveQueueBound
        let payload = [UInt8](repeating: 0xAB, count: 200)
        var sent = 0
        try await waitUntil("B's queue to fill and drop", limit: .seconds(20), interval: .milliseconds(1)) {
            guard b.events.droppedData < 4 * bound, sent < 200_000 else { return true }
            for _ in 0..<128 { try a.send(payload) }
            sent += 128
            return false
        }
        #expect(b.events.droppedData >= 4 * bound, "sent \(sent)")
        #expect(b.events.queuedData <= bound)
        print("flood: sent \(sent), dropped \(b.events.droppedData), queued \(b.events.queuedData) of \(bound)")

        // Control events after the flood: both sides restart (RFC 8445 §9); B's new pair must
        // come through behind the full queue of data.
        let pairsBefore = reader.snapshot.filter { $0 == "pair" }.count
        let newA = try await a.restart()
        let newB = try await b.restart()
        try await b.setRemoteCredentials(newA)
        try await a.setRemoteCredentials(newB)
        for candidate in try await a.localCandidates() { try await b.addRemoteCandidate(candidate) }
        for candidate in try await b.localCandidates() { try await a.addRemoteCandidate(candidate) }
        try await a.endOfRemoteCandidates()
        try await b.endOfRemoteCandidates()
        try await probeA.wait(for: "a new pair after the restart") { isUp($0) && $0.pairs.count > 1 }

        reader.resume()
        try await waitUntil("B's new pair after the flood") { reader.snapshot.filter { $0 == "pair" }.count > pairsBefore }
        // Between the pause and B's new pair: at most the queued packets, and the one the reader
        // may have taken as it paused.
        let drained = reader.snapshot.dropFirst(pausedAt).prefix { $0 != "pair" }
        #expect(drained.filter { $0 == "data" }.count <= bound + 1)
        #expect(drained.filter { $0 == "data" }.count >= bound - 1)
        // Reading resumed: fresh data arrives.
        let marker = [UInt8]("after the flood".utf8)
        try await waitUntil("B to read fresh data", interval: .milliseconds(20)) {
            if reader.received(marker) { return true }
            try a.send(marker)
            return false
        }
        await a.close()
        await b.close()
    }
}

/// Reads an agent's events and trickles its candidates to a peer, and can stop reading (the
/// stalled consumer an attacker hopes for) and start again.
final class StallingReader: Sendable {
    private let agent: ICEAgent
    private let peer: ICEAgent
    private let kinds = Mutex<[String]>([])
    private let markers = Mutex<[[UInt8]]>([])
    private let paused = Mutex(false)
    private let connected = Mutex(false)
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(_ agent: ICEAgent, peer: ICEAgent) {
        self.agent = agent
        self.peer = peer
    }

    func start() {
        let task = Task { [self] in
            for await event in agent.events {
                switch event {
                case .localCandidate(let candidate): try? await peer.addRemoteCandidate(candidate); kinds.withLock { $0.append("candidate") }
                case .gatheringDone: try? await peer.endOfRemoteCandidates(); kinds.withLock { $0.append("done") }
                case .stateChanged(let state):
                    connected.withLock { $0 = state == .connected || state == .ready }
                    kinds.withLock { $0.append("state") }
                case .selectedPair: kinds.withLock { $0.append("pair") }
                case .dataReceived(let buffer, _):
                    kinds.withLock { $0.append("data") }
                    if buffer.readableBytes < 100 { markers.withLock { $0.append(Array(buffer.readableBytesView)) } }
                }
                // Stalled: takes nothing more until resumed (bounded by the test's time limit).
                while paused.withLock({ $0 }), !Task.isCancelled { try? await Task.sleep(for: .milliseconds(5)) }
            }
        }
        self.task.withLock { $0 = task }
    }

    var snapshot: [String] { kinds.withLock { $0 } }
    var isUp: Bool { connected.withLock { $0 } }
    func received(_ bytes: [UInt8]) -> Bool { markers.withLock { $0.contains(bytes) } }
    func pause() { paused.withLock { $0 = true } }
    func resume() { paused.withLock { $0 = false } }
    func stop() { task.withLock { $0?.cancel() } }
}
