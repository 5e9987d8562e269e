import Foundation
import ICE
import Media
import NIOCore
import Synchronization
import TestSupport

/// One side of a call in a test: an ICE agent, the DTLS-SRTP transport over it, and a record
/// of what the transport reported. Local candidates are trickled to the peer agent through
/// their SDP string form, as signaling would carry them.
final class TransportPeer: Sendable {
    struct Record: Sendable {
        var rtp: [ByteBuffer] = []
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
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(name: String, agent: ICEAgent, transport: DTLSSRTPTransport, certificate: DTLSCertificate) {
        self.name = name
        self.agent = agent
        self.transport = transport
        self.certificate = certificate
    }

    func start(trickleTo peer: ICEAgent?) {
        self.peer.withLock { $0 = peer }
        transport.start()
        let task = Task { [self] in
            for await event in transport.events {
                switch event {
                case .ice(.localCandidate(let candidate)):
                    record.withLock { $0.candidates.append(candidate) }
                    if let peer = self.peer.withLock({ $0 }) { try? await peer.addRemoteCandidate(sdp: candidate.sdp) }
                case .ice(.gatheringDone):
                    record.withLock { $0.gatheringDone = true }
                    if let peer = self.peer.withLock({ $0 }) { try? await peer.endOfRemoteCandidates() }
                case .ice(.stateChanged(let state)):
                    let now = ContinuousClock.now
                    record.withLock {
                        $0.iceStates.append(state)
                        if (state == .connected || state == .ready) && $0.iceConnectedAt == nil { $0.iceConnectedAt = now }
                    }
                case .ice(.selectedPair(let pair)):
                    record.withLock { $0.pairs.append(pair) }
                case .ice(.dataReceived):
                    break
                case .connected(let profile):
                    let now = ContinuousClock.now
                    record.withLock {
                        $0.connected = profile
                        $0.dtlsConnectedAt = now
                    }
                case .rtp(let packet):
                    record.withLock { $0.rtp.append(packet) }
                case .rtcp(let packet):
                    record.withLock { $0.rtcp.append(packet) }
                case .failed(let error):
                    record.withLock { $0.failure = error }
                case .closedByPeer:
                    record.withLock { $0.closedByPeer = true }
                }
            }
            record.withLock { $0.finished = true }
        }
        self.task.withLock { $0 = task }
    }

    var snapshot: Record { record.withLock { $0 } }

    /// Polls the record until `condition` holds, for at most `limit`.
    func wait(for what: String, limit: Duration = TestDeadline.event, _ condition: @escaping @Sendable (Record) -> Bool) async throws {
        let s = { self.snapshot }
        try await waitUntil("\(name): \(what) (ICE \(s().iceStates.map(\.rawValue)), failure \(String(describing: s().failure)), stats \(transport.statistics))",
                            limit: limit) { condition(snapshot) }
    }

    func shutdown() async {
        transport.close()
        await agent.close()
        task.withLock { $0?.cancel() }
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
        let transportA = try DTLSSRTPTransport(agent: agentA, configuration: .init(
            certificate: certA, role: try DTLSRole(local: .actpass, remote: answererSetup),
            remoteFingerprint: certB.fingerprint, profiles: profilesA, handshakeTimeout: handshakeTimeout))
        let transportB = try DTLSSRTPTransport(agent: agentB, configuration: .init(
            certificate: certB, role: try DTLSRole(local: answererSetup, remote: .actpass),
            remoteFingerprint: bFingerprintOfA ?? certA.fingerprint, profiles: profilesB, handshakeTimeout: handshakeTimeout))
        return TransportPair(
            a: TransportPeer(name: "A", agent: agentA, transport: transportA, certificate: certA),
            b: TransportPeer(name: "B", agent: agentB, transport: transportB, certificate: certB))
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

/// An RTP packet with a recognisable payload.
func rtpPacket(sequence: UInt16, ssrc: UInt32, payload: String, payloadType: UInt8 = 111) throws -> ByteBuffer {
    try RTPPacket(payloadType: payloadType, sequenceNumber: sequence, timestamp: UInt32(sequence) * 960, ssrc: ssrc,
                  payload: ByteBuffer(string: payload)).serialized()
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
