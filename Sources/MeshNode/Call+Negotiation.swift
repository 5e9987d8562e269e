import Foundation
import ICE
import Media
import MeshCore
import NIOCore
import Signaling
import SDP
import DTLSSRTP

/// Offer/answer (JSEP RFC 8829) and the DTLS-SRTP transport of a ``Call``.
extension Call {
    /// The kinds this call carries and what this side sends on each.
    var sending: [String: (ssrc: UInt32, retransmissionSSRC: UInt32?)] {
        var result: [String: (ssrc: UInt32, retransmissionSSRC: UInt32?)] = [:]
        if options.audioSource != nil { result["audio"] = (ssrcs.audio, nil) }
        if videoSource != nil { result["video"] = (ssrcs.video, ssrcs.rtx) }
        return result
    }

    /// What this side sends as video: the desktop for the sharer of a desktop call, else its video source.
    var videoSource: VideoSourceSpec? {
        kind == .desktop && isCaller ? options.desktopSource : options.videoSource
    }

    /// The first offer (caller), or an ICE restart's offer with new credentials and every local
    /// candidate written in (RFC 8829 §5.2.1, RFC 8445 §9): the caller's, or the callee's after
    /// its own network changed (``restartOffer(credentials:candidates:gatheringDone:)``).
    func sendOffer(restart: Bool, fresh: Bool = false) async throws {
        let agent: ICEAgent
        let credentials: ICECredentials
        var candidates: [SDPCandidate] = []
        var replaced: ICEAgent?
        if restart, fresh, let transport {
            replaced = self.agent
            // Each side keeps its ICE role across restarts (the caller controls).
            let link = try await makeAgent(role: isCaller ? .controlling : .controlled)
            agent = link.agent
            transport.replacePath(ICEDatagramPath(agent: agent), events: link.feed.events)
            link.feed.attach(transport, tapping: agent)
            await transition(.localCredentialsRenewed)
            credentials = try await agent.localCredentials()
        } else if restart, let existing = self.agent {
            agent = existing
            credentials = try await agent.restart()
            await transition(.localCredentialsRenewed)
            candidates = try await agent.localCandidates().compactMap(Self.sdpCandidate)
        } else {
            agent = try await makeAgent(role: .controlling).agent
            credentials = try await agent.localCredentials()
        }
        let kinds = kind == .audio ? ["audio"] : ["audio", "video"]
        let gatheringDone = restart && replaced == nil && ice?.gatheringDone == true
        // A restart offer must keep the session's sections (RFC 8829 §5.2.2): the callee's is its
        // answer's, and so is the caller's once it answered a renegotiation that added one.
        let offer = if restart, let answer = localAnswer {
            Self.restartOffer(from: answer, credentials: credentials, setup: localSetup ?? .active, sessionVersion: sessionVersion,
                              candidates: candidates, gatheringDone: gatheringDone)
        } else {
            try JSEPOffer.make(local: .init(
                iceUsernameFragment: credentials.ufrag, icePassword: credentials.password, fingerprint: certificate.fingerprint,
                cname: streamID, streamID: streamID, kinds: kinds, sending: sending.filter { kinds.contains($0.key) },
                sessionID: sessionID, sessionVersion: sessionVersion, candidates: candidates, gatheringDone: gatheringDone,
                sendSimulcast: kinds.contains("video") ? offeredSimulcastRIDs : []))
        }
        sessionVersion += 1
        localOffer = offer
        if offerSent == nil { offerSent = .now }
        try await signal(.sdp, sdpType: "offer", sdp: offer.serialized)
        if !restart || replaced != nil { try await agent.gather() }
        // Not awaited: closing deallocates the old agent's TURN allocations, and when its network
        // is gone those requests time out (about 2 s). Awaited here, it held up the peer's event
        // loop, and with it the answer to this very offer (testnet roam: ICE back 2.4-3.0 s after
        // the move while it was awaited, 0.3-0.6 s since).
        if let replaced { Task { await replaced.close() } }
    }

    /// A restart offer from this side's last answer (the callee's, or the caller's to a
    /// renegotiation): that answer as a subsequent offer (RFC 8829 §5.2.2:
    /// the same m-lines, mids and codecs, so the caller's answer changes nothing else) with new
    /// ICE credentials and candidates, and `a=setup` naming the DTLS role this side has now
    /// (RFC 8842 §5.5: an offer that keeps the DTLS association keeps the roles).
    static func restartOffer(from answer: SessionDescription, credentials: ICECredentials, setup: SDPSetupRole, sessionVersion: Int,
                             candidates: [SDPCandidate], gatheringDone: Bool) -> SessionDescription {
        var offer = answer
        offer.origin.sessionVersion = String(sessionVersion)
        func renewed(_ attributes: [SDPAttribute]) -> [SDPAttribute] {
            attributes.compactMap { attribute in
                switch attribute {
                case .iceUsernameFragment: .iceUsernameFragment(credentials.ufrag)
                case .icePassword: .icePassword(credentials.password)
                case .setup: .setup(setup)
                case .candidate, .endOfCandidates: nil
                default: attribute
                }
            }
        }
        offer.attributes = renewed(offer.attributes)
        for index in offer.media.indices { offer.media[index].attributes = renewed(offer.media[index].attributes) }
        if let first = offer.media.firstIndex(where: { $0.port != 0 }) {
            offer.media[first].attributes += candidates.map { .candidate($0) }
            if gatheringDone { offer.media[first].attributes.append(.endOfCandidates) }
        }
        return offer
    }

    /// Caller: the answer to our offer. The first one sets up DTLS with the fingerprint from the
    /// signed SDP; a restart's answer only brings the peer's new ICE credentials.
    func receiveAnswer(_ text: String, restart: Bool) async throws {
        if share?.offer != nil, restart { return try await applyShareAnswer(text) }
        guard let agent, let offer = localOffer else { return }
        let answer = try SessionDescription(parsing: text)
        let remote = try SDPTransportParameters(answer)
        try await setRemote(remote, on: agent)
        guard !restart else { return }
        streams = try NegotiatedStream.fromOffering(offer: offer, answer: answer)
        // RFC 8842 §5.3: an answer without a=setup is active.
        let setup: SDPSetupRole = answer.media.contains { $0.attributes.contains { if case .setup = $0 { true } else { false } } } ? remote.setup : .active
        try startTransport(agent: agent, local: .actpass, remote: setup, fingerprint: remote.fingerprint)
    }

    /// An offer: the callee's first one sets everything up, a later one with new ICE
    /// credentials is an ICE restart; the state machine tells which, or that it is neither.
    func receiveOffer(_ text: String) async throws {
        let offer = try SessionDescription(parsing: text)
        let remote = try SDPTransportParameters(offer)
        for action in await transition(.offerReceived(usernameFragment: remote.iceUsernameFragment)) {
            switch action {
            case .answerOffer(restart: true):
                remoteOfferVersion = UInt64(offer.origin.sessionVersion)
                try await answerRestart(offer, remote: remote)
            case .answerOffer(restart: false):
                remoteOfferVersion = UInt64(offer.origin.sessionVersion)
                try await answerFirstOffer(offer, remote: remote)
            case .answerRenegotiation:
                // A renegotiation that cannot be answered leaves the call as it was: the
                // offerer rolls its offer back (the page after 5 s), so it does not end the call.
                do {
                    try await answerRenegotiation(offer)
                } catch {
                    logger.warning("call \(id): a renegotiation offer was not answered: \(error.errorReason)")
                }
            default:
                break
            }
        }
    }

    /// A later offer with the ICE credentials in force (RFC 8829 §5.2.2): the page adding a
    /// video section for its screen share to an audio call, say. Answered with the same ICE
    /// credentials and DTLS role, so ICE and DTLS go on untouched (no restart). A section this
    /// side can receive (VP8) is accepted receive-only and its pictures decoded and recorded from
    /// now on; one it cannot is refused with port 0 (RFC 3264 §6). What this side sends stays as
    /// negotiated. A repeat of an offer already answered (no newer `o=` version) is dropped.
    func answerRenegotiation(_ offer: SessionDescription) async throws {
        guard let agent else { return }
        let version = UInt64(offer.origin.sessionVersion)
        if let last = remoteOfferVersion, let version, version <= last {
            logger.debug("call \(id): offer version \(version) repeats one already answered")
            return
        }
        remoteOfferVersion = version ?? remoteOfferVersion
        let credentials = try await agent.localCredentials()
        let sendingNow = sending.filter { kind, _ in streams.contains { $0.kind == kind && $0.sends } }
        var answer = try JSEPAnswer.make(offer: offer, local: .init(
            iceUsernameFragment: credentials.ufrag, icePassword: credentials.password, fingerprint: certificate.fingerprint,
            setup: localSetup ?? .active, cname: streamID, streamID: streamID, sending: sendingNow, sessionID: sessionID,
            sendsSimulcast: sendsSimulcast))
        answer.origin.sessionVersion = String(sessionVersion)
        sessionVersion += 1
        keepShare(in: &answer)
        let negotiated = try NegotiatedStream.fromAnswering(offer: offer, answer: answer)
        try await signal(.sdp, sdpType: "answer", sdp: answer.serialized)
        localAnswer = answer
        var added: [String] = []
        if forwarded {
            let senders = receiveForwardedStreams(offer: offer, negotiated: negotiated)
            logger.info("call \(id): answered the forwarder's offer (version \(version.map(String.init) ?? "?")); \(senders.isEmpty ? "no new sender" : "now receiving \(senders.joined(separator: ", "))")")
            return
        }
        for stream in negotiated where stream.receives && !streams.contains(where: { $0.kind == stream.kind && $0.receives }) {
            if let index = streams.firstIndex(where: { $0.kind == stream.kind }) {
                streams[index].receives = true
                streams[index].remoteSSRCs = stream.remoteSSRCs
            } else {
                streams.append(stream)
            }
            media.engine?.startReceiving(stream)
            added.append(stream.kind)
        }
        let refused = answer.media.filter { $0.port == 0 }.count
        let outcome = (added.isEmpty ? "" : "; now receiving \(added.joined(separator: ", "))") + (refused == 0 ? "" : "; \(refused) section(s) refused")
        logger.info("call \(id): answered a renegotiation (offer version \(version.map(String.init) ?? "?"))\(outcome)")
    }

    /// Callee: creates the agent, answers, gathers, and starts DTLS as the client
    /// (`a=setup:active`) with the fingerprint from the signed offer.
    private func answerFirstOffer(_ offer: SessionDescription, remote: SDPTransportParameters) async throws {
        let agent = try await makeAgent(role: .controlled).agent
        try await setRemote(remote, on: agent)
        let credentials = try await agent.localCredentials()
        let answer = try makeAnswer(offer: offer, credentials: credentials, candidates: [])
        localAnswer = answer
        streams = try NegotiatedStream.fromAnswering(offer: offer, answer: answer)
        offerSent = .now
        try await signal(.sdp, sdpType: "answer", sdp: answer.serialized)
        try await agent.gather()
        try startTransport(agent: agent, local: .active, remote: remote.setup, fingerprint: remote.fingerprint)
    }

    /// The peer restarted ICE (RFC 8445 §9): the agent restarts too and the answer carries
    /// every local candidate; the DTLS session stays.
    private func answerRestart(_ offer: SessionDescription, remote: SDPTransportParameters) async throws {
        guard let agent else { return }
        let began = ContinuousClock.now
        let credentials = try await agent.restart()
        let restarted = ContinuousClock.now
        try await setRemote(remote, on: agent)
        let candidates = try await agent.localCandidates().compactMap(Self.sdpCandidate)
        let answer = try makeAnswer(offer: offer, credentials: credentials, candidates: candidates)
        let made = ContinuousClock.now
        try await signal(.sdp, sdpType: "answer", sdp: answer.serialized)
        logger.info("call \(id): answered the peer's ICE restart in \(ContinuousClock.now - began) (agent restart \(restarted - began), answer made \(made - restarted))")
    }

    func makeAnswer(offer: SessionDescription, credentials: ICECredentials, candidates: [SDPCandidate]) throws -> SessionDescription {
        // The first answer makes this side the DTLS client (RFC 8842 §5.3); a restart's answer
        // keeps the role this side has (a caller answering the callee's restart is the server).
        var answer = try JSEPAnswer.make(offer: offer, local: .init(
            iceUsernameFragment: credentials.ufrag, icePassword: credentials.password, fingerprint: certificate.fingerprint,
            setup: localSetup ?? .active, cname: streamID, streamID: streamID, sending: sending, sessionID: sessionID))
        answer.origin.sessionVersion = String(sessionVersion)
        sessionVersion += 1
        if !candidates.isEmpty, let first = answer.media.firstIndex(where: { $0.port != 0 }) {
            answer.media[first].attributes += candidates.map { .candidate($0) }
            if ice?.gatheringDone == true { answer.media[first].attributes.append(.endOfCandidates) }
        }
        return answer
    }

    /// Sets the peer's ICE credentials, then the trickled candidates that came early and the
    /// ones its description carries.
    func setRemote(_ remote: SDPTransportParameters, on agent: ICEAgent) async throws {
        let credentials = ICECredentials(ufrag: remote.iceUsernameFragment, password: remote.icePassword)
        try await agent.setRemoteCredentials(credentials)
        await transition(.remoteDescriptionApplied(credentials))
        for candidate in remote.candidates {
            await addRemoteCandidate(CandidateInfo(candidate: "candidate:\(candidate)", sdpMid: "0", sdpMLineIndex: 0))
        }
        if remote.gatheringDone { try? await agent.endOfRemoteCandidates() }
    }

    /// Starts DTLS over the agent's component; media starts when the handshake completes.
    ///
    /// Received packets take one hand-off, as on the forwarder: once the transport is attached,
    /// libnice's GLib thread hands each datagram to it (``ICEDatagramFeed/attach(_:tapping:)``),
    /// which decrypts it and hands the packet to ``CallPacketReceiver`` on that thread
    /// (``DTLSSRTPTransport/deliverPackets(to:)``), which queues it for the media engine's
    /// thread. What came earlier waited in the agent's stream and the feed. The transport's
    /// ``DTLSSRTPTransport/events`` carry its state changes.
    func startTransport(agent: ICEAgent, local: SDPSetupRole, remote: SDPSetupRole, fingerprint: SDPFingerprint) throws {
        guard transport == nil, let feed = ice?.feed else { return }
        let role = try DTLSRole(local: local, remote: remote)
        localSetup = role == .client ? .active : .passive
        let transport = try DTLSSRTPTransport(path: ICEDatagramPath(agent: agent), events: feed.events, configuration: .init(
            certificate: certificate, role: role, remoteFingerprint: fingerprint))
        self.transport = transport
        let receiver = CallPacketReceiver(media: media, forwarded: forwarded ? forwardedReceivers : nil, transport: transport)
        transport.deliverPackets { event in receiver.receive(event) }
        tasks.append(Task { [weak self] in
            for await event in transport.events {
                switch event {
                // Only packets that arrived before the hand-over began (none, in practice).
                case .rtp, .rtcp: receiver.receive(event)
                case .connected: await self?.transition(.transportConnected)
                case .failed(let error): await self?.end("DTLS failed: \(error.reason)", failed: true)
                case .closedByPeer: await self?.end("\(self?.remote ?? "the peer") closed the session")
                }
            }
        })
        feed.attach(transport, tapping: agent)
        transport.start()
        // The whole setup, from the call request to media, has a deadline.
        let timeout = options.setupTimeout - (.now - created)
        tasks.append(Task { [weak self] in
            try? await Task.sleep(for: max(timeout, .seconds(1)))
            guard let self else { return }
            await self.transition(.setupDeadlinePassed(reason: "no media path within \(self.options.setupTimeout)"))
        })
    }

    /// DTLS is up: the engine starts and the call is connected.
    func startMedia() async {
        guard let transport else { return }
        var configuration = MediaEngine.Configuration(
            streams: streams, video: videoSource, audio: options.audioSource, videoBitrateKbps: options.videoBitrateKbps,
            recordDirectory: options.recordDirectory, recordPrefix: "\(Self.fileSafe(remote))-\(Self.fileName(ofCallID: id))-",
            audioSSRC: ssrcs.audio, videoSSRC: ssrcs.video, rtxSSRC: ssrcs.rtx, cname: streamID)
        if sendsSimulcast { configuration.simulcastSSRCs = Self.makeSimulcastSSRCs() }
        let engine = MediaEngine(configuration: configuration) { outgoing in
            switch outgoing {
            case .rtp(let packet): try? transport.sendRTP(packet)
            case .rtcp(let packet): try? transport.sendRTCP(packet)
            }
        }
        do {
            try engine.start()
        } catch {
            await end("media could not start: \(error.errorReason)", failed: true)
            return
        }
        media.engine = engine
        mediaStarted = .now
        await transition(.mediaStarted)
        watchLiveness(transport)
        logger.info("call \(id): media flowing (\(transport.profile.map { "\($0)" } ?? "?"))")
    }

    /// Media is the best sign of a live path: audio alone sends 50 packets a second. When nothing
    /// at all arrives for `silenceLimit`, the path is treated as dead without waiting for RFC 7675's
    /// 30 s consent expiry — as browsers go `disconnected` after a few silent seconds.
    func watchLiveness(_ transport: DTLSSRTPTransport) {
        let limit = options.silenceLimit
        tasks.append(Task { [weak self] in
            var last = -1
            var changed = ContinuousClock.now
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(250))
                let statistics = transport.statistics
                let count = statistics.rtpReceived + statistics.rtcpReceived
                if count != last {
                    last = count
                    changed = .now
                } else if ContinuousClock.now - changed >= limit {
                    changed = .now
                    await self?.mediaSilent(for: limit)
                }
            }
        })
    }

    func mediaSilent(for limit: Duration) async {
        if state == .connected { logger.info("call \(id): nothing received for \(limit); the path is treated as dead") }
        await transition(.mediaSilent)
    }

    static func sdpCandidate(_ candidate: ICECandidate) -> SDPCandidate? {
        try? SDPCandidate(line: candidate.sdp)
    }

    /// The whole call id in a file name, other bytes than `A–Z a–z 0–9 - _ .` written `%XX`:
    /// one-to-one, so two calls (ids of up to 64 printable ASCII characters) never share a file.
    static func fileName(ofCallID id: String) -> String {
        var name = ""
        for byte in id.utf8 {
            let character = Character(Unicode.Scalar(byte))
            if byte < 0x80, character.isLetter || character.isNumber || "-_.".contains(character) {
                name.append(character)
            } else {
                let hex = Array("0123456789ABCDEF")
                name += "%\(hex[Int(byte >> 4)])\(hex[Int(byte & 0xF)])"
            }
        }
        return name
    }

    static func fileSafe(_ text: String) -> String {
        String(text.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." ? $0 : "_" })
    }
}
