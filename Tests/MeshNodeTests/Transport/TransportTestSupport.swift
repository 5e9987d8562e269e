import Foundation
import DTLSSRTP
import ICE
import MeshNode
import NIOCore
import RTP
import SDP
import Synchronization
import TestSupport
import Codecs

/// One side of a call in a test: an ICE agent, the DTLS-SRTP transport over it, and a record
/// of what the transport reported. Local candidates are trickled to the peer agent through
/// their SDP string form, as signaling would carry them.
final class TransportPeer: Sendable {
    struct Record: Sendable {
        var rtp: [ByteBuffer] = []
        /// Each RTP packet's stamp from the socket (``TransportEvent/rtp(_:arrival:)``) and when
        /// this record's reader took it off the transport's events.
        var rtpTimes: [(arrival: ContinuousClock.Instant, read: ContinuousClock.Instant)] = []
        var rtcp: [ByteBuffer] = []
        var connected: SRTPProfile?
        var failure: TransportError?
        var closedByPeer = false
        var iceStates: [ICEComponentState] = []
        var pairs: [ICESelectedPair] = []
        var candidates: [ICECandidate] = []
        var gatheringDone = false
        var finished = false
        /// When ICE first reported connected/ready, and when DTLS completed.
        var iceConnectedAt: ContinuousClock.Instant?
        var dtlsConnectedAt: ContinuousClock.Instant?
    }

    let name: String
    let agent: ICEAgent
    let transport: DTLSSRTPTransport
    let certificate: DTLSCertificate
    private let record = Mutex(Record())
    private let peer = Mutex<ICEAgent?>(nil)
    private let tasks = Mutex<[Task<Void, Never>]>([])
    /// Until when the reader of the transport's events sleeps before taking the next one.
    private let readHold = Mutex<ContinuousClock.Instant?>(nil)
    /// The agent's events go to the peer's record and, through this, to the transport's path
    /// (as a call composes them: `ICEDatagramPath`).
    private let forward: AsyncStream<ICEAgentEvent>.Continuation

    init(name: String, agent: ICEAgent, certificate: DTLSCertificate, configuration: DTLSSRTPTransport.Configuration) throws {
        self.name = name
        self.agent = agent
        self.certificate = certificate
        let (forwarded, forward) = AsyncStream.makeStream(of: ICEAgentEvent.self)
        self.forward = forward
        let path = ICEDatagramPath(agent: agent)
        self.transport = try DTLSSRTPTransport(path: path, events: path.datagramEvents(from: forwarded), configuration: configuration)
    }

    func start(trickleTo peer: ICEAgent?) {
        self.peer.withLock { $0 = peer }
        transport.start()
        let ice = Task { [self] in
            for await event in agent.events {
                forward.yield(event)
                switch event {
                case .localCandidate(let candidate):
                    record.withLock { $0.candidates.append(candidate) }
                    if let peer = self.peer.withLock({ $0 }) { try? await peer.addRemoteCandidate(sdp: candidate.sdp) }
                case .gatheringDone:
                    record.withLock { $0.gatheringDone = true }
                    if let peer = self.peer.withLock({ $0 }) { try? await peer.endOfRemoteCandidates() }
                case .stateChanged(let state):
                    let now = ContinuousClock.now
                    record.withLock {
                        $0.iceStates.append(state)
                        if (state == .connected || state == .ready) && $0.iceConnectedAt == nil { $0.iceConnectedAt = now }
                    }
                case .selectedPair(let pair):
                    record.withLock { $0.pairs.append(pair) }
                case .dataReceived:
                    break
                }
            }
            forward.finish()
        }
        let dtls = Task { [self] in
            for await event in transport.events {
                if let until = readHold.withLock({ $0 }), until > .now { try? await Task.sleep(until: until, clock: .continuous) }
                switch event {
                case .connected(let profile):
                    let now = ContinuousClock.now
                    record.withLock {
                        $0.connected = profile
                        $0.dtlsConnectedAt = now
                    }
                case .rtp(let packet, let arrival):
                    let read = ContinuousClock.now
                    record.withLock {
                        $0.rtp.append(packet)
                        $0.rtpTimes.append((arrival, read))
                    }
                case .rtcp(let packet, _):
                    record.withLock { $0.rtcp.append(packet) }
                case .failed(let error):
                    record.withLock { $0.failure = error }
                case .closedByPeer:
                    record.withLock { $0.closedByPeer = true }
                }
            }
            record.withLock { $0.finished = true }
        }
        tasks.withLock { $0 = [ice, dtls] }
    }

    var snapshot: Record { record.withLock { $0 } }

    /// Makes the reader of the transport's events a slow consumer: the next event it takes, it
    /// holds until `until` before recording, while later ones queue up behind it.
    func holdReading(until: ContinuousClock.Instant) { readHold.withLock { $0 = until } }

    /// How the handshake ended for this side: its ``TransportError``, or `nil` if it connected.
    func connectionFailure(_ what: String) async throws -> TransportError? {
        try await withTimeout(what) { () -> TransportError? in
            do {
                _ = try await self.transport.connected()
                return nil
            } catch let error as TransportError {
                return error
            }
        }
    }

    /// Polls the record until `condition` holds, for at most `limit`.
    func wait(for what: String, limit: Duration = TestDeadline.event, _ condition: @escaping @Sendable (Record) -> Bool) async throws {
        let s = { self.snapshot }
        try await waitUntil("\(name): \(what) (ICE \(s().iceStates.map(\.rawValue)), failure \(String(describing: s().failure)), stats \(transport.statistics))",
                            limit: limit) { condition(snapshot) }
    }

    func shutdown() async {
        transport.close()
        await agent.close()
        for task in tasks.withLock({ $0 }) { task.cancel() }
    }
}

/// Two peers, A the offerer (ICE controlling, `a=setup:actpass`) and B the answerer (ICE
/// controlled, `a=setup:active` or `passive`), with transports ready to start.
struct TransportPair {
    var a: TransportPeer
    var b: TransportPeer

    /// Sets up agents and transports; `bFingerprintOfA` lets a test hand B a wrong
    /// fingerprint for A, as a tampered SDP would.
    static func make(
        answererSetup: SDPSetupRole = .active,
        profilesA: [SRTPProfile] = [.aeadAES128GCM, .aes128CMHMACSHA1_80],
        profilesB: [SRTPProfile] = [.aeadAES128GCM, .aes128CMHMACSHA1_80],
        iceA: ICEAgentConfiguration = .init(role: .controlling, localAddresses: ["127.0.0.1"]),
        iceB: ICEAgentConfiguration = .init(role: .controlled, localAddresses: ["127.0.0.1"]),
        bFingerprintOfA: SDPFingerprint? = nil,
        handshakeTimeout: Duration = .seconds(10)
    ) async throws -> TransportPair {
        let certA = try DTLSCertificate(commonName: "A")
        let certB = try DTLSCertificate(commonName: "B")
        let agentA = try await ICEAgent(configuration: iceA)
        let agentB = try await ICEAgent(configuration: iceB)
        return TransportPair(
            a: try TransportPeer(name: "A", agent: agentA, certificate: certA, configuration: .init(
                certificate: certA, role: try DTLSRole(local: .actpass, remote: answererSetup),
                remoteFingerprint: certB.fingerprint, profiles: profilesA, handshakeTimeout: handshakeTimeout)),
            b: try TransportPeer(name: "B", agent: agentB, certificate: certB, configuration: .init(
                certificate: certB, role: try DTLSRole(local: answererSetup, remote: .actpass),
                remoteFingerprint: bFingerprintOfA ?? certA.fingerprint, profiles: profilesB, handshakeTimeout: handshakeTimeout)))
    }

    /// Exchanges ICE credentials, starts both transports (trickling to each other) and gathers.
    func start() async throws {
        try await b.agent.setRemoteCredentials(a.agent.localCredentials())
        try await a.agent.setRemoteCredentials(b.agent.localCredentials())
        a.start(trickleTo: b.agent)
        b.start(trickleTo: a.agent)
        try await a.agent.gather()
        try await b.agent.gather()
    }

    func shutdown() async {
        await a.shutdown()
        await b.shutdown()
    }
}


/// Sends RTP packets from `sender` (fresh sequence numbers) until `receiver` got one whose
/// payload is `payload`. Returns the decrypted packet.
@discardableResult
func deliverRTP(_ payload: String, ssrc: UInt32, from sender: TransportPeer, to receiver: TransportPeer,
                firstSequence: UInt16 = 1) async throws -> RTPPacket {
    var sequence = firstSequence
    return try await waitFor("\(receiver.name) to receive RTP '\(payload)'", interval: .milliseconds(20)) {
        if let match = receiver.snapshot.rtp.lazy.compactMap({ try? RTPPacket(parsing: $0) }).first(where: {
            $0.ssrc == ssrc && String(buffer: $0.payload) == payload
        }) {
            return match
        }
        try sender.transport.sendRTP(try rtpPacket(sequence: sequence, ssrc: ssrc, payload: payload))
        sequence &+= 1
        return nil
    }
}

/// Sends a receiver report from `sender` until `receiver` decrypted one from `ssrc`.
func deliverRTCP(ssrc: UInt32, from sender: TransportPeer, to receiver: TransportPeer) async throws {
    let report = try RTCPPacket.serializeCompound([.receiverReport(RTCPReceiverReport(ssrc: ssrc))])
    try await waitUntil("\(receiver.name) to receive an RTCP RR from \(ssrc)", interval: .milliseconds(20)) {
        let got = receiver.snapshot.rtcp.contains { packet in
            guard let parsed = try? RTCPPacket.parseCompound(packet), case .receiverReport(let rr)? = parsed.first else { return false }
            return rr.ssrc == ssrc
        }
        if got { return true }
        try sender.transport.sendRTCP(report)
        return false
    }
}
