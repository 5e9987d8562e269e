import Foundation
import ICE
import Logging
import Media
import MeshCore
import NIOCore
import SDP
import DTLSSRTP
import Signaling

/// The forwarder's side of one participant's call to it (docs/protocol.md "Room calls",
/// *Forwarded mode*): its own ICE agent (controlled, with the node's STUN/TURN, as a peer's),
/// DTLS-SRTP as client, the participant's streams handed to the ``ForwardedCall``, and the
/// subsequent offers that add every other participant's streams at each join and leave.
///
/// The participant is the caller and offers first; the forwarder answers receive-only. After
/// that the forwarder offers at each change (one offer outstanding at a time, RFC 8829 §5.2.2):
/// sections are appended for new streams and a leaver's are set to port 0 (RFC 3264 §8.2), never
/// removed or reordered. The participant's own later offers are answered too
/// (``answerLaterOffer(_:)``): an ICE restart when its path broke, with the DTLS session kept.
actor ForwardedSession {
    /// The call-setup id of the participant's call to the forwarder.
    nonisolated let id: String
    /// The participant's address as the forwarder's client files it, and the key its call is bound to.
    nonisolated let participant: String
    nonisolated let key: String
    nonisolated let forwarded: ForwardedCall
    private let client: SignalingClient
    private let iceServers: [ICEServer]
    private let localAddresses: [String]
    private let logger: Logger
    private let certificate: DTLSCertificate
    private let sessionID = UInt64.random(in: 1...0x3FFF_FFFF_FFFF_FFFF)
    private var sessionVersion = 1
    private var agent: ICEAgent?
    private var feed: ICEDatagramFeed?
    private var transport: DTLSSRTPTransport?
    private var firstMid = "0"
    /// The simulcast layers the participant's offer sends and the first answer took (RFC 8853
    /// §5.3); every later offer asks for them again in its video section, so that the
    /// participant's answers keep sending them.
    private var simulcastRIDs: [String] = []
    /// The header extensions the first answer kept in each of the participant's own sections
    /// (its ids): later offers repeat them, since an id may not change meaning within a session
    /// (RFC 8285 §6; Chromium refuses an offer that remaps one).
    private var ownExtensions: [(kind: String, maps: [SDPExtensionMap])] = []
    /// The streams offered to the participant, in the order they appeared; indices of those of
    /// participants who left or stopped them (offered with port 0 since).
    private var offered: [JSEPOffer.ForwardedStream] = []
    private var withdrawn: Set<Int> = []
    private var bound: Set<UInt32> = []
    /// The sections after the participant's own first two, in order, each with its mid: the
    /// forwarder's streams and the sections the participant added (RFC 3264 §8: none is ever
    /// removed or reordered; a dead one keeps its place with port 0 until a new section reuses it).
    private var layout: [(mid: String, entry: LayoutEntry)] = []
    /// How many of ``layout`` the participant agreed to (answered, or offered itself): an offer
    /// of the participant's that crosses the forwarder's drops the rest (rollback).
    private var committedLayout = 0
    /// The layout size the outstanding offer carries, committed by its answer.
    private var outstandingLayout = 0
    /// The sections the participant added with later offers (RFC 3264 §8.1), and the sources the
    /// core receives from sections of the participant's that began to send after its first offer, by mid.
    private var participantSections: [AddedSection] = []
    private var laterSources: [String: UInt32] = [:]
    /// The mids of the participant's first sections that sent (their sources came with the first answer).
    private var firstSending: Set<String> = []
    /// A later offer of the participant's is being answered: a renegotiation waits for the answer.
    private var answering = false
    /// The offer waiting for its answer, and whether another change came meanwhile.
    private var outstanding: SessionDescription?
    private var changedMeanwhile = false
    /// The outstanding offer's answer is late (``answerTimeout``): a change may offer anew, but
    /// until then a late answer still binds its streams (a loaded browser answers in seconds).
    private var outstandingLate = false
    /// The forwarder's latest offer that was answered: the streams each of its sections carries,
    /// which an answer to the participant's own later offer repeats.
    private var currentOffer: SessionDescription?
    /// The participant's ICE credentials in force, its DTLS fingerprint, and the `o=` version of its
    /// latest offer answered (a repeat is dropped).
    private var remoteCredentials: ICECredentials?
    private var remoteFingerprint: SDPFingerprint?
    private var remoteOfferVersion: UInt64?
    /// When ICE failed with no restart under way: the session ends unless the path comes back
    /// (a restart from the participant) within ``restartGrace``.
    private var failedAt: ContinuousClock.Instant?
    /// An offer of the forwarder's was dropped for the participant's (glare): the next
    /// ``renegotiate()`` offers even if no stream changed since.
    private var rolledBack = false
    private var tasks: [Task<Void, Never>] = []
    private(set) var ended = false
    /// Whether its transport is in the core (after the first answer).
    private(set) var added = false
    private var endWaiters: [CheckedContinuation<Void, Never>] = []

    /// One entry of ``layout``.
    private enum LayoutEntry {
        /// `offered[index]`.
        case forwarded(Int)
        /// `participantSections[index]`.
        case participant(Int)
    }

    /// A section the participant added: received while `live` (its source in ``laterSources``),
    /// with the header extension ids the answer kept, which later offers repeat (RFC 8285 §6).
    private struct AddedSection {
        var kind: String
        var mid: String
        var live: Bool
        var extensions: [SDPExtensionMap]
    }

    /// Sections a participant may add beyond its first offer (a screen share, say) and send on:
    /// video and audio. More are refused with port 0 (RFC 3264 §6).
    static let maxAddedSections = (video: 2, audio: 1)
    /// Sections a participant may append over a session, taken or refused: each stays in the
    /// session for good (RFC 3264 §8), so an offer past this is refused as a whole and the
    /// session ends, rather than every later offer to it growing.
    static let maxAppendedSections = 8

    /// How long an offer waits for its answer before the forwarder gives up on it (the
    /// participant keeps the streams it had) and offers again if something changed.
    static let answerTimeout: Duration = .seconds(5)
    /// How long a session whose ICE failed waits for the participant's ICE restart before it ends
    /// (the CLI restarts at once on silence; its later attempts take a few seconds each).
    static let restartGrace: Duration = .seconds(15)

    init(id: String, participant: String, key: String, forwarded: ForwardedCall, client: SignalingClient, iceServers: [ICEServer],
         localAddresses: [String], logger: Logger) throws {
        self.localAddresses = localAddresses
        self.id = id
        self.participant = participant
        self.key = key
        self.forwarded = forwarded
        self.client = client
        self.iceServers = iceServers
        self.logger = logger
        certificate = try DTLSCertificate(commonName: "meshnode-forwarder")
    }

    /// Waits until the session ended (hang-up, DTLS closed, ICE failed).
    func waitUntilEnded() async {
        if ended { return }
        await withCheckedContinuation { endWaiters.append($0) }
    }

    /// A verified call-setup message from the participant (the caller bound it by address and key).
    func handle(_ payload: CallPayload) async {
        guard !ended else { return }
        switch payload.type {
        case .sdp:
            guard let text = payload.sdp else { return }
            do {
                if payload.sdpType == "offer" {
                    if agent == nil {
                        try await answerFirstOffer(text)
                    } else {
                        try await answerLaterOffer(text)
                    }
                } else if payload.sdpType == "answer" {
                    try await applyAnswer(text)
                }
            } catch {
                logger.warning("forwarded call \(forwarded.id): \(participant)'s SDP failed: \(error.errorReason)")
                await end(reason: "its SDP failed: \(error.errorReason)", tell: true)
            }
        case .candidate:
            guard let candidate = payload.candidate, let agent else { return }
            if candidate.candidate.isEmpty {
                try? await agent.endOfRemoteCandidates()
            } else {
                try? await agent.addRemoteCandidate(sdp: candidate.candidate)
            }
        case .hangup, .cancel:
            await end(reason: "\(participant) hung up", tell: false)
        default:
            break
        }
    }

    /// The participant's first offer: the forwarder answers its sections receive-only (RFC 3264
    /// §6.1), as DTLS client (`a=setup:active`), and hands its streams to the core.
    private func answerFirstOffer(_ text: String) async throws {
        let offer = try SessionDescription(parsing: text)
        let remote = try SDPTransportParameters(offer)
        let configuration = ICEServerSettings.agentConfiguration(servers: iceServers, role: .controlled, localAddresses: localAddresses, relayOnly: false)
        // On the pool's loop for this call: its packets are forwarded on that loop's thread
        // (``ICEDatagramFeed/attach(_:tapping:)``), and other calls on other cores.
        let agent = try await ICEAgent(configuration: configuration, loop: .pooled(by: forwarded.id), logger: logger)
        self.agent = agent
        // Once the transport exists, the agent's datagrams go to it on the GLib thread as they
        // come off the socket (``ICEDatagramFeed/attach(_:tapping:)``): no thread is woken per
        // packet before the forwarding actor's queue. Until then (nothing is expected: the
        // forwarder is the DTLS client) they come through the agent's stream and are counted.
        let feed = ICEDatagramFeed()
        self.feed = feed
        firstMid = offer.media.first?.mid ?? "0"
        tasks.append(Task { [weak self] in
            for await event in agent.events {
                feed.feed(event)
                if case .dataReceived = event { continue }
                await self?.iceEvent(event)
            }
            feed.finish()
        })
        remoteCredentials = ICECredentials(ufrag: remote.iceUsernameFragment, password: remote.icePassword)
        remoteFingerprint = remote.fingerprint
        remoteOfferVersion = UInt64(offer.origin.sessionVersion)
        try await agent.setRemoteCredentials(remoteCredentials!)
        for candidate in remote.candidates { try? await agent.addRemoteCandidate(sdp: "candidate:\(candidate)") }
        if remote.gatheringDone { try? await agent.endOfRemoteCandidates() }
        let credentials = try await agent.localCredentials()
        var answer = try JSEPAnswer.make(offer: offer, local: .init(
            iceUsernameFragment: credentials.ufrag, icePassword: credentials.password, fingerprint: certificate.fingerprint,
            setup: .active, cname: "forwarder", streamID: "forwarder", sending: [:], sessionID: sessionID, receivesSimulcast: true))
        answer.origin.sessionVersion = String(sessionVersion)
        sessionVersion += 1
        ownExtensions = answer.media.map { ($0.kind, $0.extensionMaps) }
        let negotiated = try NegotiatedStream.fromAnswering(offer: offer, answer: answer)
        // The participant's own sections, as the forwarder receives them: the sources the core
        // takes packets of, by the SSRCs the signed offer announced (nothing else passes).
        let sources = negotiated.compactMap { stream -> ForwardedSource? in
            // A participant that sends simulcast (RFC 8853, `a=simulcast:send` in its offer): the
            // layers' SSRCs are learned from their rids.
            if stream.receives, stream.kind == "video", !stream.simulcastRIDs.isEmpty {
                return .simulcast(rids: stream.simulcastRIDs, payloadType: stream.payloadType, retransmissionPayloadType: stream.rtxPayloadType)
            }
            return Self.singleSource(stream)
        }
        simulcastRIDs = negotiated.first { $0.kind == "video" && $0.receives }?.simulcastRIDs ?? []
        firstSending = Set(negotiated.filter(\.receives).compactMap(\.mid))
        let audioLevel = offer.media.first { $0.kind == "audio" }?.extensionMaps.first { $0.uri == RTPHeaderExtensionURI.audioLevel }
            .flatMap { UInt8(exactly: $0.id) }
        let extensions = ForwardingExtensionIDs(audioLevel: audioLevel, transportWideCC: negotiated.compactMap(\.transportCCExtensionID).first,
                                                rtpStreamID: negotiated.compactMap(\.ridExtensionID).first,
                                                repairedRTPStreamID: negotiated.compactMap(\.repairedRIDExtensionID).first)
        try await signal(.sdp, sdpType: "answer", sdp: answer.serialized)
        try await agent.gather()
        let role = try DTLSRole(local: .active, remote: remote.setup)
        let path = ICEDatagramPath(agent: agent)
        let transport = try DTLSSRTPTransport(path: path, events: feed.events, configuration: .init(
            certificate: certificate, role: role, remoteFingerprint: remote.fingerprint))
        self.transport = transport
        feed.attach(transport, tapping: agent)
        let agentQueue = agent.events
        try await forwarded.add(participant, transport: transport, sources: sources, extensions: extensions) {
            ReceiveQueueDrops(ice: agentQueue.droppedData, path: feed.droppedBeforeAttach)
        }
        added = true
        transport.start()
        logger.info("forwarded call \(forwarded.id): \(participant) answered with \(sources.count) source(s)")
    }

    /// A later offer from the participant (RFC 8829 §5.2.2, a subsequent offer): with a new
    /// `ice-ufrag`/`ice-pwd` it is an ICE restart (RFC 8839 §4.4.1.1.1, RFC 8445 §9), which the
    /// forwarder's agent follows; the DTLS association and the SRTP keys stay (RFC 8842 §5.5:
    /// the same fingerprint, `a=setup:active` as before). The answer takes the participant's own
    /// sections receive-only as the first answer did, and each section the forwarder offered
    /// `sendonly` again with the same SSRCs. A section the participant adds (RFC 3264 §8.1,
    /// RFC 8829 §5.2.2: appended, or reusing a dead section's place) and sends on, or one of its
    /// first two that begins to send, becomes a new source forwarded to everyone (``applyOwnSections``);
    /// one it stops (port 0, §8.2, or no longer sending) stops that source. An offer crossing
    /// the forwarder's own outstanding offer wins: that one is dropped (RFC 8829 §4.1.8.2,
    /// rollback) and made again after this answer.
    /// - Throws: on a changed DTLS fingerprint (a new DTLS association is a new call), SDP that
    ///   does not parse, fewer sections than the session has (RFC 3264 §8), or more sections
    ///   appended over the session than ``maxAppendedSections``; the session ends then.
    private func answerLaterOffer(_ text: String) async throws {
        guard let agent else { return }
        let offer = try SessionDescription(parsing: text)
        let remote = try SDPTransportParameters(offer)
        guard remote.fingerprint == remoteFingerprint else {
            throw MediaError(.forbidden, "a later offer with another DTLS fingerprint: a new DTLS association needs a new call")
        }
        let restart = remote.iceUsernameFragment != remoteCredentials?.ufrag || remote.icePassword != remoteCredentials?.password
        let version = UInt64(offer.origin.sessionVersion)
        if !restart, let version, let last = remoteOfferVersion, version <= last {
            logger.debug("forwarded call \(forwarded.id): \(participant)'s offer version \(version) repeats one already answered")
            return
        }
        answering = true
        defer { answering = false }
        let crossed = outstanding
        if outstanding != nil {
            outstanding = nil
            outstandingLate = false
            changedMeanwhile = true
            rolledBack = true
            rollBackLayout(keepingWhat: offer)
        }
        let sessionSections = currentOffer?.media.count ?? 0
        guard offer.media.count >= sessionSections else {
            throw MediaError(.forbidden, "a later offer with \(offer.media.count) sections, fewer than the session's \(sessionSections) (RFC 3264 §8: none is removed)")
        }
        let appended = max(0, offer.media.count - 2 - layout.count)
        guard participantSections.count + appended <= Self.maxAppendedSections else {
            throw MediaError(.limitReached, "a later offer appends \(appended) sections to the \(participantSections.count) the participant added before; at most \(Self.maxAppendedSections) in a session")
        }
        remoteOfferVersion = version ?? remoteOfferVersion
        let began = ContinuousClock.now
        var credentials = try await agent.localCredentials()
        var candidates: [SDPCandidate] = []
        if restart {
            credentials = try await agent.restart()
            let renewed = ICECredentials(ufrag: remote.iceUsernameFragment, password: remote.icePassword)
            try await agent.setRemoteCredentials(renewed)
            remoteCredentials = renewed
            for candidate in remote.candidates { try? await agent.addRemoteCandidate(sdp: "candidate:\(candidate)") }
            if remote.gatheringDone { try? await agent.endOfRemoteCandidates() }
            // Local candidates survive the restart (libnice keeps them); the answer carries them all.
            candidates = try await agent.localCandidates().compactMap(Call.sdpCandidate)
        }
        var answer = try JSEPAnswer.make(offer: offer, local: .init(
            iceUsernameFragment: credentials.ufrag, icePassword: credentials.password, fingerprint: certificate.fingerprint,
            setup: .active, cname: "forwarder", streamID: "forwarder", sending: [:], sessionID: sessionID, receivesSimulcast: true))
        answer.origin.sessionVersion = String(sessionVersion)
        sessionVersion += 1
        let refusals = await applyOwnSections(offer: offer, answer: &answer, crossed: crossed)
        // Bundle what is still accepted (RFC 9143 §7.3.1: a rejected section leaves the group).
        let accepted = answer.media.filter { $0.port != 0 }.compactMap(\.mid)
        answer.attributes = answer.attributes.filter { if case .group = $0 { false } else { true } }
        if !accepted.isEmpty { answer.attributes.insert(.group(SDPGroup(semantics: "BUNDLE", identifiers: accepted)), at: 0) }
        let streamIDs = Set(offered.enumerated().filter { !withdrawn.contains($0.offset) }.map(\.element.streamID))
        if !streamIDs.isEmpty, !answer.attributes.contains(where: { if case .other(name: "msid-semantic", _) = $0 { true } else { false } }) {
            answer.attributes.append(.other(name: "msid-semantic", value: " WMS \(streamIDs.sorted().joined(separator: " "))"))
        }
        if !candidates.isEmpty, let first = answer.media.firstIndex(where: { $0.port != 0 }) {
            answer.media[first].attributes += candidates.map { .candidate($0) } + [.endOfCandidates]
        }
        try await signal(.sdp, sdpType: "answer", sdp: answer.serialized)
        committedLayout = layout.count
        for refusal in refusals { logger.notice("forwarded call \(forwarded.id): refused a section of \(participant)'s offer: \(refusal)") }
        logger.info("forwarded call \(forwarded.id): answered \(participant)'s \(restart ? "ICE restart" : "renegotiation") in \(ContinuousClock.now - began)\(refusals.isEmpty ? "" : "; \(refusals.count) section(s) refused")")
        answering = false
        if changedMeanwhile {
            changedMeanwhile = false
            await renegotiate()
        }
    }

    /// Drops the sections of the forwarder's offer that the participant's crossing offer
    /// replaced (RFC 8829 §4.1.8.2): they are offered again, after its answer, from the core's
    /// streams. Those the participant's offer has in place (it answered that offer before its
    /// own: the same mid and kind at the same position, received or refused) stay.
    private func rollBackLayout(keepingWhat offer: SessionDescription) {
        func answered(_ position: Int) -> Bool {
            guard position + 2 < offer.media.count, case .forwarded(let index) = layout[position].entry else { return false }
            let section = offer.media[position + 2]
            return section.mid == layout[position].mid && section.kind == offered[index].kind
                && (section.port == 0 || section.direction == .recvonly || section.direction == .inactive)
        }
        var kept = committedLayout
        while kept < layout.count, answered(kept) { kept += 1 }
        committedLayout = kept
        guard layout.count > committedLayout else { return }
        let dropped = layout[committedLayout...].compactMap { _, entry -> Int? in if case .forwarded(let index) = entry { index } else { nil } }
        layout.removeLast(layout.count - committedLayout)
        if let first = dropped.min(), first == offered.count - dropped.count {
            offered.removeLast(dropped.count)
            withdrawn = withdrawn.filter { $0 < first }
        }
    }

    /// The answer's sections after the participant's own first two, and what the participant's
    /// own sections now send: the forwarder's streams are answered `sendonly` with their SSRCs
    /// and `msid` (RFC 8830, RFC 5576) as its offer described them; a section the participant
    /// adds and sends on becomes a source of the core (within ``maxAddedSections``, a single
    /// stream with its SSRC declared), anything else new is refused with port 0 (RFC 3264 §6).
    /// `crossed`: the forwarder's offer this one crossed (rolled back). Returns the reasons of the refusals.
    private func applyOwnSections(offer: SessionDescription, answer: inout SessionDescription, crossed: SessionDescription?) async -> [String] {
        var refusals: [String] = []
        let negotiated = (try? NegotiatedStream.fromAnswering(offer: offer, answer: answer)) ?? []
        let byMid = Dictionary(negotiated.compactMap { stream in stream.mid.map { ($0, stream) } }, uniquingKeysWith: { first, _ in first })
        func refuse(_ index: Int, _ reason: String?) {
            let offered = offer.media[index]
            if let reason { refusals.append("section \(index) (mid \(offered.mid ?? "-"), \(offered.kind.prefix(16))): \(reason)") }
            answer.media[index] = MediaDescription(kind: offered.kind, port: 0, proto: offered.proto, formats: Array(offered.formats.prefix(1)),
                                                   connections: [.init()], attributes: offered.mid.map { [.mid($0)] } ?? [])
        }
        func sends(_ index: Int) -> Bool {
            let section = offer.media[index]
            return section.port != 0 && answer.media[index].port != 0 && (section.direction == .sendonly || section.direction == .sendrecv)
        }
        /// Starts receiving the section at `index` as a new source; the reason when the core refuses it.
        func start(_ index: Int) async -> String? {
            guard let mid = offer.media[index].mid, let stream = byMid[mid] else { return "no mid, or no codec in common" }
            guard stream.simulcastRIDs.isEmpty else { return "an added stream is one stream, not simulcast" }
            guard let source = Self.singleSource(stream) else { return "it declares no SSRC (a=ssrc, RFC 5576)" }
            do {
                try await forwarded.addSource(source, to: participant)
            } catch {
                return error.errorReason
            }
            laterSources[mid] = source.ssrc
            return nil
        }
        func stop(mid: String) async {
            guard let ssrc = laterSources.removeValue(forKey: mid) else { return }
            await forwarded.removeSource(ssrc, of: participant)
        }

        // Its first two sections: one the first offer did not send on may begin to (the page's
        // screen share in an audio call sends on the video section the forwarder offered it).
        for index in offer.media.indices.prefix(2) {
            guard let mid = offer.media[index].mid, !firstSending.contains(mid) else { continue }
            if sends(index), laterSources[mid] == nil {
                if let reason = await start(index) { refuse(index, reason) }
            } else if !sends(index) {
                await stop(mid: mid)
            }
        }
        for index in offer.media.indices.dropFirst(2) {
            let offered = offer.media[index]
            let mid = offered.mid ?? ""
            let position = index - 2
            if position < layout.count, layout[position].mid == mid {
                switch layout[position].entry {
                case .forwarded(let stream):
                    // The stream the forwarder sends there, as its offer described it (the one
                    // answered, or the one this offer crossed, which the participant had answered).
                    let ours = (currentOffer?.media.first { $0.mid == mid && $0.port != 0 }) ?? crossed?.media.first { $0.mid == mid && $0.port != 0 }
                    guard !withdrawn.contains(stream), offered.port != 0, answer.media[index].port != 0, let ours,
                          offered.direction == .recvonly || offered.direction == .sendrecv else {
                        refuse(index, nil)
                        continue
                    }
                    answer.media[index].attributes = answer.media[index].attributes.map { if case .direction = $0 { .direction(.sendonly) } else { $0 } }
                    answer.media[index].attributes += ours.attributes.filter { attribute in
                        switch attribute {
                        case .msid, .ssrc, .ssrcGroup: true
                        default: false
                        }
                    }
                case .participant(let added):
                    // A section it added before: received while it sends; stopped for good otherwise.
                    if participantSections[added].live, sends(index) { continue }
                    participantSections[added].live = false
                    await stop(mid: mid)
                    refuse(index, nil)
                }
                continue
            }
            // A new section: appended, or in a dead section's place with a new mid (RFC 3264 §8.3).
            if position < layout.count {
                let dead = switch layout[position].entry {
                case .forwarded(let stream): withdrawn.contains(stream)
                case .participant(let added): !participantSections[added].live
                }
                guard dead, !layout.contains(where: { $0.mid == mid }), !mid.isEmpty else {
                    refuse(index, offered.port == 0 ? nil : "mid \(mid.prefix(32)) does not match the section the session has there")
                    continue
                }
            }
            var section = AddedSection(kind: offered.kind, mid: mid, live: false, extensions: answer.media[index].extensionMaps)
            let taken = participantSections.filter { $0.live && $0.kind == offered.kind }.count
            let limit = offered.kind == "video" ? Self.maxAddedSections.video : offered.kind == "audio" ? Self.maxAddedSections.audio : 0
            if offered.port == 0 || mid.isEmpty || layout.contains(where: { $0.mid == mid }) || ["0", "1"].contains(mid) {
                refuse(index, offered.port == 0 ? nil : "no mid, or a mid the session has (RFC 8843 §15)")
            } else if !sends(index) {
                refuse(index, "the forwarder takes added sections that send")
            } else if taken >= limit {
                refuse(index, "at most \(Self.maxAddedSections.video) added video and \(Self.maxAddedSections.audio) added audio section(s) are taken (limitReached)")
            } else if let reason = await start(index) {
                refuse(index, reason)
            } else {
                section.live = true
            }
            if mid.isEmpty || layout.contains(where: { $0.mid == mid }) || ["0", "1"].contains(mid) {
                section.mid = "x\(index)"
            }
            participantSections.append(section)
            let entry = (mid: section.mid, entry: LayoutEntry.participant(participantSections.count - 1))
            if position < layout.count { layout[position] = entry } else { layout.append(entry) }
        }
        return refusals
    }

    /// The single stream a section the forwarder receives declares: its first `a=ssrc`, and the
    /// second of `a=ssrc-group:FID` as RTX when RTX was negotiated (RFC 4588 §8).
    private static func singleSource(_ stream: NegotiatedStream) -> ForwardedSource? {
        guard stream.receives, let kind = ForwardedSource.Kind(rawValue: stream.kind), let ssrc = stream.remoteSSRCs.first else { return nil }
        let rtx = stream.rtxPayloadType.flatMap { pt in stream.remoteSSRCs.dropFirst().first.map { ForwardedSource.Retransmission(payloadType: pt, ssrc: $0) } }
        return ForwardedSource(kind: kind, ssrc: ssrc, payloadType: stream.payloadType, retransmission: rtx)
    }

    private func iceEvent(_ event: ICEAgentEvent) async {
        switch event {
        case .localCandidate(let candidate):
            let info = CandidateInfo(candidate: candidate.sdp, sdpMid: firstMid, sdpMLineIndex: 0)
            try? await signal(.candidate, candidate: info)
        case .gatheringDone:
            try? await signal(.candidate, candidate: CandidateInfo(candidate: "", sdpMid: firstMid, sdpMLineIndex: 0))
        case .stateChanged(let state) where state == .failed:
            // The participant restarts ICE when its path breaks (answerLaterOffer); end only if
            // no restart brings the path back in time.
            let failed = ContinuousClock.now
            failedAt = failed
            logger.notice("forwarded call \(forwarded.id): ICE to \(participant) failed; waiting \(Self.restartGrace) for its restart")
            tasks.append(Task { [weak self] in
                try? await Task.sleep(for: Self.restartGrace)
                await self?.restartGraceEnded(failedAt: failed)
            })
        case .stateChanged(let state) where state == .connected || state == .ready:
            failedAt = nil
        default:
            break
        }
    }

    /// Offers the participant what the core sends it now: new streams appended, those of
    /// participants who left withdrawn. One offer at a time; a change meanwhile is offered
    /// after the answer (or the timeout).
    func renegotiate() async {
        guard !ended, let agent else { return }
        if answering || (outstanding != nil && !outstandingLate) {
            changedMeanwhile = true
            return
        }
        let current = await forwarded.outgoingStreams(to: participant)
        let currentSSRCs = Set(current.map(\.ssrc))
        var changed = rolledBack
        rolledBack = false
        for stream in current where !offered.contains(where: { $0.ssrc == stream.ssrc }) {
            offered.append(.init(kind: stream.kind.rawValue, ssrc: stream.ssrc, retransmissionSSRC: stream.retransmissionSSRC, streamID: stream.from))
            layout.append((freshMid(), .forwarded(offered.count - 1)))
            changed = true
        }
        for (index, stream) in offered.enumerated() where !currentSSRCs.contains(stream.ssrc) && !withdrawn.contains(index) {
            withdrawn.insert(index)
            changed = true
        }
        guard changed else { return }
        do {
            let credentials = try await agent.localCredentials()
            let sections = layout.map { mid, entry -> JSEPOffer.ForwardedSection in
                switch entry {
                case .forwarded(let index): .stream(offered[index], mid: mid)
                case .participant(let index): .received(kind: participantSections[index].kind, mid: mid)
                }
            }
            var offer = try JSEPOffer.makeForwarded(
                local: .init(iceUsernameFragment: credentials.ufrag, icePassword: credentials.password, fingerprint: certificate.fingerprint,
                             cname: "forwarder", streamID: "forwarder", kinds: [], sending: [:], sessionID: sessionID, sessionVersion: sessionVersion),
                sections: sections, receiveSimulcast: simulcastRIDs)
            for (position, (_, entry)) in layout.enumerated() {
                switch entry {
                case .forwarded(let index) where withdrawn.contains(index): offer.media[position + 2].port = 0
                case .participant(let index) where !participantSections[index].live: offer.media[position + 2].port = 0
                case .participant(let index): Self.repeatExtensions(participantSections[index].extensions, in: &offer.media[position + 2])
                default: break
                }
            }
            for (index, own) in ownExtensions.prefix(2).enumerated() where offer.media[index].kind == own.kind {
                Self.repeatExtensions(own.maps, in: &offer.media[index])
            }
            sessionVersion += 1
            outstanding = offer
            outstandingLate = false
            outstandingLayout = layout.count
            let version = sessionVersion
            try await signal(.sdp, sdpType: "offer", sdp: offer.serialized)
            tasks.append(Task { [weak self] in
                try? await Task.sleep(for: Self.answerTimeout)
                await self?.answerTimedOut(version: version)
            })
        } catch {
            outstanding = nil
            logger.warning("forwarded call \(forwarded.id): no offer to \(participant): \(error.errorReason)")
        }
    }

    /// Puts `maps` in place of a section's `a=extmap` lines: an id keeps its meaning for the
    /// session (RFC 8285 §6), so a later offer repeats the ids the answer kept.
    private static func repeatExtensions(_ maps: [SDPExtensionMap], in section: inout MediaDescription) {
        section.attributes.removeAll { if case .extmap = $0 { true } else { false } }
        section.attributes.insert(contentsOf: maps.map { .extmap($0) }, at: section.attributes.firstIndex {
            if case .direction = $0 { true } else { false }
        } ?? section.attributes.endIndex)
    }

    /// A mid for the next section of the forwarder's: its position if free, else the next free
    /// number (the participant chooses the mids of the sections it adds, RFC 8843 §7.2).
    private func freshMid() -> String {
        let used = Set(["0", "1"] + layout.map(\.mid))
        var candidate = layout.count + 2
        while used.contains(String(candidate)) { candidate += 1 }
        return String(candidate)
    }

    private func restartGraceEnded(failedAt failed: ContinuousClock.Instant) async {
        guard failedAt == failed else { return }
        await end(reason: "ICE failed and no restart brought it back within \(Self.restartGrace)", tell: true)
    }

    private func answerTimedOut(version: Int) async {
        guard outstanding != nil, sessionVersion == version else { return }
        logger.notice("forwarded call \(forwarded.id): \(participant) did not answer the offer within \(Self.answerTimeout)")
        // Kept: a late answer still binds the streams (they are offered again only when something
        // changes, so dropping the offer here left them without media for good).
        outstandingLate = true
        if changedMeanwhile {
            changedMeanwhile = false
            await renegotiate()
        }
    }

    /// The participant's answer to a subsequent offer: each stream whose section it accepted is
    /// bound (its packets flow from now on; a video stream asks its source for a key frame).
    private func applyAnswer(_ text: String) async throws {
        guard let offer = outstanding else { return }
        let answer = try SessionDescription(parsing: text)
        // An answer has the offer's sections (RFC 3264 §6): one with fewer answers an earlier,
        // late offer, whose streams the outstanding one offers again.
        guard answer.media.count == offer.media.count else {
            logger.notice("forwarded call \(forwarded.id): \(participant) answered an earlier offer (\(answer.media.count) of \(offer.media.count) sections); waiting for the answer to the latest")
            return
        }
        outstanding = nil
        outstandingLate = false
        currentOffer = offer
        committedLayout = max(committedLayout, outstandingLayout)
        let negotiated = try NegotiatedStream.fromOffering(offer: offer, answer: answer)
        let byMid = Dictionary(negotiated.compactMap { stream in stream.mid.map { ($0, stream) } }, uniquingKeysWith: { first, _ in first })
        var added = 0
        for (mid, entry) in layout.prefix(outstandingLayout) {
            guard case .forwarded(let index) = entry, !withdrawn.contains(index) else { continue }
            let stream = offered[index]
            guard !bound.contains(stream.ssrc), let section = byMid[mid], section.sends else { continue }
            do {
                try await forwarded.bind(participant, ssrc: stream.ssrc, ForwardingBinding(
                    mid: mid, payloadType: section.payloadType, retransmissionPayloadType: section.rtxPayloadType))
                bound.insert(stream.ssrc)
                added += 1
            } catch {
                logger.notice("forwarded call \(forwarded.id): stream \(stream.ssrc) to \(participant) not bound: \(error.errorReason)")
            }
        }
        logger.info("forwarded call \(forwarded.id): \(participant) accepted \(added) new stream(s)")
        if changedMeanwhile {
            changedMeanwhile = false
            await renegotiate()
        }
    }

    /// Ends the session: out of the core, the agent closed; `tell` sends the participant a hang-up.
    func end(reason: String, tell: Bool) async {
        guard !ended else { return }
        ended = true
        if tell { try? await client.callSetup(.hangup, to: participant, call: id, reason: reason) }
        await forwarded.remove(participant, reason: reason)
        for task in tasks { task.cancel() }
        feed?.finish()
        agent?.deliverDatagrams(to: nil)
        if let agent { Task { await agent.close() } }
        let waiters = endWaiters
        endWaiters = []
        for waiter in waiters { waiter.resume() }
    }

    private func signal(_ type: CallSetupType, sdpType: String? = nil, sdp: String? = nil, candidate: CandidateInfo? = nil) async throws {
        try await client.callSetup(type, to: participant, call: id, sdpType: sdpType, sdp: sdp, candidate: candidate)
    }
}
