import Foundation
import Media
import MeshCore
import SDP

/// A screen share added to a call to a room call's forwarder (docs/rooms.md "Added streams"):
/// one more `sendonly` video section in a subsequent offer (RFC 8829 §5.2.2, RFC 3264 §8.1),
/// sent by an engine of its own, which the forwarder forwards to every other participant.
extension Call {
    /// What a share sends, once the forwarder's answer took its section.
    struct Share: Sendable {
        var source: VideoSourceSpec
        var mid: String
        var ssrc: UInt32
        var retransmissionSSRC: UInt32
        /// The offer that adds it, until its answer comes.
        var offer: SessionDescription?
    }

    /// Starts sending `source` (a screen, or a test pattern) to the forwarder as a stream of its
    /// own, beside what the call sends already: the forwarder answers the new section
    /// `recvonly` and offers it to the others; media starts with that answer.
    /// - Throws: ``MediaError`` `.invalidArgument` for a call that is not a connected call to a
    ///   forwarder or that shares already.
    public func addShare(_ source: VideoSourceSpec) async throws {
        guard forwarded, state == .connected, let agent, share == nil, let base = localAnswer ?? localOffer else {
            throw MediaError(.invalidArgument, "a share is added to a connected call to a forwarder, once")
        }
        let credentials = try await agent.localCredentials()
        var offer = Self.restartOffer(from: base, credentials: credentials, setup: localSetup ?? .active, sessionVersion: sessionVersion,
                                      candidates: [], gatheringDone: false)
        let used = Set(offer.media.compactMap(\.mid))
        var number = offer.media.count
        while used.contains(String(number)) { number += 1 }
        let mid = String(number)
        let ssrc = UInt32.random(in: 1...UInt32.max), rtx = UInt32.random(in: 1...UInt32.max)
        guard var section = try JSEPOffer.make(local: .init(
            iceUsernameFragment: credentials.ufrag, icePassword: credentials.password, fingerprint: certificate.fingerprint,
            cname: streamID, streamID: streamID, kinds: ["video"], sending: ["video": (ssrc, rtx)], sessionID: sessionID)).media.first else { return }
        section.attributes = section.attributes.compactMap { attribute -> SDPAttribute? in
            switch attribute {
            case .mid: .mid(mid)
            case .direction: .direction(.sendonly)
            case .setup: .setup(localSetup ?? .active)
            case .candidate, .endOfCandidates: nil
            // Without transport-cc: the call's engine numbers the transport-wide sequence, and a
            // second engine's numbers would collide with its.
            case .extmap(let map) where map.uri == RTPHeaderExtensionURI.transportWideCC: nil
            case .rtcpFeedback(let feedback) where feedback.type == "transport-cc": nil
            default: attribute
            }
        }
        offer.media.append(section)
        offer.attributes = offer.attributes.map { attribute in
            if case .group(let group) = attribute, group.semantics == "BUNDLE" {
                return .group(SDPGroup(semantics: "BUNDLE", identifiers: group.identifiers + [mid]))
            }
            return attribute
        }
        sessionVersion += 1
        share = Share(source: source, mid: mid, ssrc: ssrc, retransmissionSSRC: rtx, offer: offer)
        try await signal(.sdp, sdpType: "offer", sdp: offer.serialized)
        logger.info("call \(id): offered a share (mid \(mid))")
    }

    /// The forwarder's answer to the share's offer: the share's engine starts if it took the
    /// section (`recvonly`); port 0 means it refused it (RFC 3264 §6), and nothing is sent.
    func applyShareAnswer(_ text: String) async throws {
        guard var share, let offer = share.offer, let transport else { return }
        share.offer = nil
        let answer = try SessionDescription(parsing: text)
        guard answer.media.count == offer.media.count else {
            self.share = nil
            logger.warning("call \(id): the answer to the share's offer has \(answer.media.count) sections, not \(offer.media.count)")
            return
        }
        // The offer is this side's description from now on (its restarts keep its sections).
        localAnswer = offer
        let negotiated = try NegotiatedStream.fromOffering(offer: offer, answer: answer)
        guard let stream = negotiated.first(where: { $0.mid == share.mid && $0.sends }) else {
            self.share = nil
            logger.warning("call \(id): the forwarder refused the share's section")
            return
        }
        self.share = share
        var configuration = MediaEngine.Configuration(
            streams: [stream], video: share.source, audio: nil, videoBitrateKbps: min(options.videoBitrateKbps, 600),
            audioSSRC: UInt32.random(in: 1...UInt32.max), videoSSRC: share.ssrc, rtxSSRC: share.retransmissionSSRC, cname: streamID)
        configuration.adaptsBitrate = false
        let engine = MediaEngine(configuration: configuration) { outgoing in
            switch outgoing {
            case .rtp(let packet): try? transport.sendRTP(packet)
            case .rtcp(let packet): try? transport.sendRTCP(packet)
            }
        }
        try engine.start()
        media.share = engine
        logger.info("call \(id): sharing (mid \(share.mid), SSRC \(share.ssrc))")
    }

    /// An answer of this side's to a forwarder's offer keeps sending the share in its section
    /// (the forwarder offers it `recvonly`): its SSRCs, not the camera's.
    func keepShare(in answer: inout SessionDescription) {
        guard let share, share.offer == nil, let index = answer.media.firstIndex(where: { $0.mid == share.mid }), answer.media[index].port != 0 else { return }
        var attributes = answer.media[index].attributes.filter { attribute in
            switch attribute {
            case .direction, .msid, .ssrc, .ssrcGroup: false
            default: true
            }
        }
        let position = attributes.firstIndex { if case .rtcpMux = $0 { true } else { false } } ?? attributes.endIndex
        attributes.insert(contentsOf: [.direction(.sendonly), .msid(SDPMediaStreamID(streamID: streamID, trackID: "\(streamID)-share"))], at: position)
        attributes.append(.ssrcGroup(SDPSourceGroup(semantics: "FID", ssrcs: [share.ssrc, share.retransmissionSSRC])))
        for ssrc in [share.ssrc, share.retransmissionSSRC] {
            attributes.append(.ssrc(SDPSourceAttribute(ssrc: ssrc, attribute: "cname", value: streamID)))
            attributes.append(.ssrc(SDPSourceAttribute(ssrc: ssrc, attribute: "msid", value: "\(streamID) \(streamID)-share")))
        }
        answer.media[index].attributes = attributes
    }
}
