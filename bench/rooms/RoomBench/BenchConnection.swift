import DTLSSRTP
import ICE
import MeshNode
import NIOCore
import SDP
import Synchronization

/// One peer connection of a simulated participant to the server under test: the project's own
/// ICE agent (libnice) on the bench's one address (``benchAddress``), DTLS-SRTP over its selected pair, and SDP from `JSEPOffer` /
/// `JSEPAnswer`, as a call uses them. It can offer (a publisher), answer (a subscriber, or a
/// renegotiation of the same connection) and count what arrives.
///
/// Counting: a receiver that decrypted and parsed tens of thousands of packets a second would
/// make the load generator the limit. So received SRTP datagrams are counted as they leave
/// libnice (RFC 7983 §7: first byte 128–191; RTCP told apart by its packet type, RFC 5761 §4),
/// and one in ``verifyEvery`` goes on to the SRTP layer, whose count of authenticated packets
/// proves the counted ones are the server's real, keyed packets.
final class BenchConnection: Sendable {
    /// What one connection has seen.
    struct Counters: Sendable {
        var rtp = 0
        var rtpBytes = 0
        var rtcp = 0
        var sent = 0
        var sendErrors = 0
        var gatheringDone = false
        var connected = false
        var failure: String?
    }

    /// Every this many received SRTP packets, one goes through libsrtp2 to be authenticated.
    static let verifyEvery = 16

    let id: String
    let agent: ICEAgent
    let certificate: DTLSCertificate
    let sessionID = UInt64.random(in: 1...(1 << 62))
    private let counters = Mutex(Counters())
    private let state = Mutex<(transport: DTLSSRTPTransport?, localSetup: SDPSetupRole?, version: Int)>((nil, nil, 1))
    private let path: (stream: AsyncStream<ICEAgentEvent>, continuation: AsyncStream<ICEAgentEvent>.Continuation)
    /// The forwarder host's path: datagrams handed to the transport as they are read.
    private let feed = ICEDatagramFeed()

    /// Whether this is a participant's connection (received packets counted and sampled, the
    /// transport's events drained here) or the forwarder host's (everything to `ForwardedCall`,
    /// which reads the transport's events itself).
    let counting: Bool

    private init(id: String, agent: ICEAgent, counting: Bool) throws {
        self.id = id
        self.agent = agent
        self.counting = counting
        self.certificate = try DTLSCertificate(commonName: "room-bench")
        path = AsyncStream.makeStream(of: ICEAgentEvent.self)
    }

    /// Creates the agent (host candidates on ``benchAddress`` only: the bench never leaves the
    /// namespace the runner made for it, or loopback) and gathers.
    /// - Parameter loop: the forwarder host's agents take the pool's loop for its call, as
    ///   `serve --forwarder`'s do (``ICEEventLoop/pooled(by:)``).
    static func make(id: String, role: ICEAgentConfiguration.Role, counting: Bool = true, loop: ICEEventLoop = .shared) async throws -> BenchConnection {
        let agent = try await ICEAgent(configuration: ICEAgentConfiguration(role: role, localAddresses: [benchAddress]), loop: loop)
        let connection = try BenchConnection(id: id, agent: agent, counting: counting)
        connection.readEvents()
        try await agent.gather()
        try await connection.waitUntil("gathering", timeout: .seconds(10)) { $0.gatheringDone }
        return connection
    }

    var snapshot: Counters { counters.withLock { $0 } }
    var transport: DTLSSRTPTransport? { state.withLock { $0.transport } }

    /// The agent's events: gathering and state news here, datagrams counted and sampled into the
    /// DTLS path (DTLS and STUN-free datagrams before the handshake completes all go through).
    private func readEvents() {
        let agent = self.agent
        let continuation = path.continuation
        let counting = self.counting
        Task { [self] in
            var seen = 0
            for await event in agent.events {
                if !counting {
                    // The forwarder host's connection: datagrams straight to its transport, as
                    // `serve --forwarder` hands them (ForwardedSession, ICEDatagramFeed).
                    feed.feed(event)
                    switch event {
                    case .gatheringDone: counters.withLock { $0.gatheringDone = true }
                    case .stateChanged(.failed): counters.withLock { $0.failure = $0.failure ?? "ICE failed" }
                    default: break
                    }
                    continue
                }
                switch event {
                case .gatheringDone:
                    counters.withLock { $0.gatheringDone = true }
                case .stateChanged(.failed):
                    counters.withLock { $0.failure = $0.failure ?? "ICE failed" }
                    continuation.yield(event)
                case .dataReceived(let datagram, _):
                    guard counting, let first = datagram.getInteger(at: datagram.readerIndex, as: UInt8.self), (128...191).contains(first),
                          let second = datagram.getInteger(at: datagram.readerIndex + 1, as: UInt8.self)
                    else {
                        continuation.yield(event)
                        continue
                    }
                    let isRTCP = (192...223).contains(second)
                    let connected = counters.withLock { counters -> Bool in
                        guard counters.connected else { return false }
                        if isRTCP { counters.rtcp += 1 } else {
                            counters.rtp += 1
                            counters.rtpBytes += datagram.readableBytes
                        }
                        return true
                    }
                    seen += 1
                    if !connected || isRTCP || seen % Self.verifyEvery == 0 { continuation.yield(event) }
                default:
                    continuation.yield(event)
                }
            }
            continuation.finish()
            feed.finish()
        }
    }

    private func waitUntil(_ what: String, timeout: Duration, _ condition: @Sendable (Counters) -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition(snapshot) {
            if let failure = snapshot.failure { throw BenchError("\(id): \(failure)") }
            guard ContinuousClock.now < deadline else { throw BenchError("\(id): no \(what) within \(timeout)") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    private func candidates() async throws -> [SDPCandidate] {
        try await agent.localCandidates().compactMap { try? SDPCandidate(line: $0.sdp) }
    }

    /// An offer sending audio and video (``Sending``), with every candidate written in.
    func offer(sending: Sending) async throws -> SessionDescription {
        let credentials = try await agent.localCredentials()
        let version = state.withLock { state -> Int in
            state.version += 1
            return state.version
        }
        var offer = try JSEPOffer.make(local: .init(
            iceUsernameFragment: credentials.ufrag, icePassword: credentials.password, fingerprint: certificate.fingerprint,
            cname: id, streamID: id, kinds: ["audio", "video"],
            sending: ["audio": (sending.audioSSRC, nil), "video": (sending.videoSSRCs.last!, nil)],
            sessionID: sessionID, sessionVersion: version, candidates: try await candidates(), gatheringDone: true))
        if sending.videoSSRCs.count > 1, let video = offer.media.firstIndex(where: { $0.kind == "video" }) {
            offer.media[video].attributes = Self.simulcast(offer.media[video].attributes, sending: sending, cname: id)
        }
        return offer
    }

    /// Legacy SSRC simulcast (`a=ssrc-group:SIM`, lowest layer first), which Janus reads from a
    /// publisher's offer: the offer's own video SSRC (the top layer) stays, the lower layers'
    /// SSRCs are added before the group.
    static func simulcast(_ attributes: [SDPAttribute], sending: Sending, cname: String) -> [SDPAttribute] {
        var result = attributes
        for ssrc in sending.videoSSRCs.dropLast() {
            result.append(.ssrc(SDPSourceAttribute(ssrc: ssrc, attribute: "cname", value: cname)))
            result.append(.ssrc(SDPSourceAttribute(ssrc: ssrc, attribute: "msid", value: "\(cname) \(cname)-video")))
        }
        result.append(.ssrcGroup(SDPSourceGroup(semantics: "SIM", ssrcs: sending.videoSSRCs)))
        return result
    }

    /// Applies the server's answer to our offer and starts DTLS (our role from `a=setup`).
    func accept(answer: SessionDescription) async throws {
        let remote = try SDPTransportParameters(answer)
        try await setRemote(remote)
        try start(local: .actpass, remote: remote)
    }

    /// Answers the server's offer (a subscription, or a renegotiation of this connection), with
    /// `sending` if this side sends. The first answer makes us the DTLS client (RFC 8842 §5.3);
    /// later ones keep the transport.
    func answer(offer: SessionDescription, sending: Sending?) async throws -> SessionDescription {
        let remote = try SDPTransportParameters(offer)
        let first = transport == nil
        if first { try await setRemote(remote) }
        let credentials = try await agent.localCredentials()
        let setup = state.withLock { $0.localSetup } ?? .active
        var send: [String: (ssrc: UInt32, retransmissionSSRC: UInt32?)] = [:]
        if let sending {
            send = ["audio": (sending.audioSSRC, nil), "video": (sending.videoSSRCs.last!, nil)]
        }
        var answer = try JSEPAnswer.make(offer: offer, local: .init(
            iceUsernameFragment: credentials.ufrag, icePassword: credentials.password, fingerprint: certificate.fingerprint,
            setup: setup, cname: id, streamID: id, sending: send, sessionID: sessionID))
        if first, let index = answer.media.firstIndex(where: { $0.port != 0 }) {
            answer.media[index].attributes += try await candidates().map { .candidate($0) }
            answer.media[index].attributes.append(.endOfCandidates)
        }
        if first { try start(local: .active, remote: remote) }
        return answer
    }

    private func setRemote(_ remote: SDPTransportParameters) async throws {
        try await agent.setRemoteCredentials(ICECredentials(ufrag: remote.iceUsernameFragment, password: remote.icePassword))
        for candidate in remote.candidates {
            // Only the bench's address is local: a server's other candidates are not reached.
            try await agent.addRemoteCandidate(sdp: "candidate:\(candidate)")
        }
        // Janus trickles its candidates instead of writing them into its SDP: without any, the
        // pair comes from its checks to ours (a peer-reflexive candidate, RFC 8445 §7.3.1.3), so
        // the end of candidates is signalled only for a description that carries them.
        if remote.gatheringDone || !remote.candidates.isEmpty { try await agent.endOfRemoteCandidates() }
    }

    private func start(local: SDPSetupRole, remote: SDPTransportParameters) throws {
        let role = try DTLSRole(local: local, remote: remote.setup)
        let iceLink = ICEDatagramPath(agent: agent)
        let transport = try DTLSSRTPTransport(path: iceLink, events: counting ? iceLink.datagramEvents(from: path.stream) : feed.events,
                                              configuration: .init(certificate: certificate, role: role, remoteFingerprint: remote.fingerprint))
        if !counting { feed.attach(transport, tapping: agent) }
        state.withLock {
            $0.transport = transport
            $0.localSetup = role == .client ? .active : .passive
        }
        transport.start()
        Task { [self] in
            do {
                _ = try await transport.connected()
                counters.withLock { $0.connected = true }
            } catch {
                counters.withLock { $0.failure = "DTLS-SRTP: \(error)" }
            }
        }
        guard counting else { return }
        // Nobody else reads a participant's transport: its (sampled) packets are dropped here
        // instead of queueing in the stream.
        Task { [self] in
            for await event in transport.events {
                if case .closedByPeer = event { counters.withLock { $0.failure = "\(id): the server closed the session" } }
            }
        }
    }

    /// Waits for DTLS-SRTP to be up.
    func connected(timeout: Duration) async throws {
        try await waitUntil("DTLS-SRTP connection", timeout: timeout) { $0.connected }
    }

    /// Protects and sends one RTP packet; failures are counted, not thrown (a replay goes on).
    func send(_ packet: ByteBuffer) {
        guard let transport else { return }
        do {
            try transport.sendRTP(packet)
            counters.withLock { $0.sent += 1 }
        } catch {
            counters.withLock { $0.sendErrors += 1 }
        }
    }

    /// close_notify, then the agent.
    func close() async {
        transport?.close()
        await agent.close()
    }
}

/// The SSRCs a participant sends with: one audio stream and one video stream per layer.
struct Sending: Sendable {
    var audioSSRC: UInt32
    /// Lowest layer first.
    var videoSSRCs: [UInt32]

    static func random(layers: Int) -> Sending {
        var used = Set<UInt32>()
        func fresh() -> UInt32 {
            while true {
                let ssrc = UInt32.random(in: 1...UInt32.max)
                if used.insert(ssrc).inserted { return ssrc }
            }
        }
        return Sending(audioSSRC: fresh(), videoSSRCs: (0..<layers).map { _ in fresh() })
    }
}
