import Foundation
import ICE
import NIOCore
import Synchronization
import TestSupport
import TURNServer

/// Consumes one agent's event stream, records what it saw and trickles its candidates
/// to a peer agent, as signaling would.
final class AgentProbe: Sendable {
    struct Record: Sendable {
        var candidates: [ICECandidate] = []
        var gatheringDone = false
        var states: [ICEComponentState] = []
        var pairs: [ICESelectedPair] = []
        var received: [ByteBuffer] = []
        var finished = false
    }

    let agent: ICEAgent
    let name: String
    private let record = Mutex(Record())
    private let peer = Mutex<ICEAgent?>(nil)
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(_ agent: ICEAgent, name: String) {
        self.agent = agent
        self.name = name
    }

    /// Starts consuming events; local candidates and end-of-candidates go to `peer`
    /// when one is set.
    func start(trickleTo peer: ICEAgent?) {
        self.peer.withLock { $0 = peer }
        let task = Task { [self] in
            for await event in agent.events {
                switch event {
                case .localCandidate(let candidate):
                    record.withLock { $0.candidates.append(candidate) }
                    if let peer = self.peer.withLock({ $0 }) {
                        // Through the SDP string form, as signaling carries it.
                        try? await peer.addRemoteCandidate(sdp: candidate.sdp)
                    }
                case .gatheringDone:
                    record.withLock { $0.gatheringDone = true }
                    if let peer = self.peer.withLock({ $0 }) { try? await peer.endOfRemoteCandidates() }
                case .stateChanged(let state):
                    record.withLock { $0.states.append(state) }
                case .selectedPair(let pair):
                    record.withLock { $0.pairs.append(pair) }
                case .dataReceived(let buffer, _):
                    record.withLock { $0.received.append(buffer) }
                }
            }
            record.withLock { $0.finished = true }
        }
        self.task.withLock { $0 = task }
    }

    var snapshot: Record { record.withLock { $0 } }

    /// Polls the record until `condition` holds, for at most `limit`.
    func wait(
        for what: String, limit: Duration = TestDeadline.event, _ condition: @escaping @Sendable (Record) -> Bool
    ) async throws {
        try await waitUntil("\(name): \(what) (states \(snapshot.states.map(\.rawValue)))", limit: limit) { condition(snapshot) }
    }

    func stop() {
        task.withLock { $0?.cancel() }
    }
}

/// Whether the component reached a state where data can be sent.
func isUp(_ record: AgentProbe.Record) -> Bool {
    !record.pairs.isEmpty && (record.states.last == .connected || record.states.last == .ready)
}

/// Creates two agents that trickle to each other, exchanges credentials and starts
/// gathering on both; returns once both have a selected pair, with the elapsed time (printed,
/// never asserted on).
/// `loopB` runs B's agent (A's is on the shared loop).
func connect(_ first: ICEConfigurationPair, loopB: ICEEventLoop = .shared) async throws -> (AgentProbe, AgentProbe, Duration) {
    let a = try await ICEAgent(configuration: first.controlling)
    let b = try await ICEAgent(configuration: first.controlled, loop: loopB)
    let probeA = AgentProbe(a, name: "A")
    let probeB = AgentProbe(b, name: "B")
    let start = ContinuousClock.now
    try await b.setRemoteCredentials(a.localCredentials())
    try await a.setRemoteCredentials(b.localCredentials())
    probeA.start(trickleTo: b)
    probeB.start(trickleTo: a)
    try await a.gather()
    try await b.gather()
    try await probeA.wait(for: "a selected pair", isUp)
    try await probeB.wait(for: "a selected pair", isUp)
    return (probeA, probeB, ContinuousClock.now - start)
}

/// Configurations for a controlling and a controlled agent.
struct ICEConfigurationPair {
    var controlling: ICEAgentConfiguration
    var controlled: ICEAgentConfiguration

    /// Both agents gather only on 127.0.0.1: no traffic leaves loopback.
    static func loopback(
        turn: [ICEAgentConfiguration.TURNServer] = [], relayOnly: Bool = false, address: String = "127.0.0.1"
    ) -> Self {
        var a = ICEAgentConfiguration(role: .controlling, turnServers: turn, relayOnly: relayOnly, localAddresses: [address])
        a.trickle = true
        var b = a
        b.role = .controlled
        return Self(controlling: a, controlled: b)
    }
}

/// Sends `payload` from `sender` until `receiver` has seen it (UDP may drop the first
/// packets while the pair settles).
func deliver(_ payload: String, from sender: AgentProbe, to receiver: AgentProbe) async throws {
    let bytes = Array(payload.utf8)
    try await waitUntil("\(receiver.name) to receive '\(payload)'", interval: .milliseconds(20)) {
        if receiver.snapshot.received.contains(where: { Array($0.readableBytesView) == bytes }) { return true }
        try sender.agent.send(bytes)
        return false
    }
}
