import Foundation
import ICE
import NIOCore
import Synchronization
import TURNServer

/// Thrown when a bounded wait in a test runs out.
struct TestTimeout: Error, CustomStringConvertible {
    var what: String
    var seconds: Double
    var description: String { "timed out after \(seconds) s waiting for \(what)" }
}

/// Runs `body`, failing with `TestTimeout` if it takes longer than `seconds`.
func withTimeout<T: Sendable>(
    _ seconds: Double, _ what: String, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
            throw TestTimeout(what: what, seconds: seconds)
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

/// The clock used for reported timings.
let testClock = ContinuousClock()

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
                case .dataReceived(let buffer):
                    record.withLock { $0.received.append(buffer) }
                }
            }
            record.withLock { $0.finished = true }
        }
        self.task.withLock { $0 = task }
    }

    var snapshot: Record { record.withLock { $0 } }

    /// Polls the record every 10 ms until `condition` holds, for at most `seconds`.
    func wait(
        for what: String, seconds: Double = 10, _ condition: @escaping @Sendable (Record) -> Bool
    ) async throws {
        let deadline = testClock.now + .milliseconds(Int(seconds * 1000))
        while !condition(snapshot) {
            guard testClock.now < deadline else {
                throw TestTimeout(what: "\(name): \(what) (states \(snapshot.states.map(\.rawValue)))", seconds: seconds)
            }
            try await Task.sleep(for: .milliseconds(10))
        }
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
/// gathering on both; returns once both have a selected pair, with the elapsed time.
func connect(
    _ first: ICEConfigurationPair, timeout: Double = 10
) async throws -> (AgentProbe, AgentProbe, Duration) {
    let a = try await ICEAgent(configuration: first.controlling)
    let b = try await ICEAgent(configuration: first.controlled)
    let probeA = AgentProbe(a, name: "A")
    let probeB = AgentProbe(b, name: "B")
    let start = testClock.now
    try await b.setRemoteCredentials(a.localCredentials())
    try await a.setRemoteCredentials(b.localCredentials())
    probeA.start(trickleTo: b)
    probeB.start(trickleTo: a)
    try await a.gather()
    try await b.gather()
    try await probeA.wait(for: "a selected pair", seconds: timeout, isUp)
    try await probeB.wait(for: "a selected pair", seconds: timeout, isUp)
    return (probeA, probeB, testClock.now - start)
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
/// packets while the pair settles), at most `seconds`.
func deliver(_ payload: String, from sender: AgentProbe, to receiver: AgentProbe, seconds: Double = 5) async throws {
    let bytes = Array(payload.utf8)
    let deadline = testClock.now + .milliseconds(Int(seconds * 1000))
    while !receiver.snapshot.received.contains(where: { Array($0.readableBytesView) == bytes }) {
        guard testClock.now < deadline else {
            throw TestTimeout(what: "\(receiver.name) to receive '\(payload)'", seconds: seconds)
        }
        try sender.agent.send(bytes)
        try await Task.sleep(for: .milliseconds(20))
    }
}

extension Duration {
    var milliseconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }
}
