extension JSEPOffer {
    /// A stream the forwarding node sends a participant: another participant's audio or video
    /// under the forwarder's SSRCs (docs/rooms.md "The forwarding core").
    public struct ForwardedStream: Hashable, Sendable {
        /// `audio` or `video`.
        public var kind: String
        /// The forwarder's SSRC for it.
        public var ssrc: UInt32
        /// Its RTX SSRC (video), for `a=ssrc-group:FID` (RFC 4588 §8).
        public var retransmissionSSRC: UInt32?
        /// Whose stream it is: the `msid` stream id and CNAME, so the receiver groups a
        /// participant's audio and video into one media stream (RFC 8830 §2).
        public var streamID: String

        /// Creates a stream description.
        public init(kind: String, ssrc: UInt32, retransmissionSSRC: UInt32? = nil, streamID: String) {
            self.kind = kind
            self.ssrc = ssrc
            self.retransmissionSSRC = retransmissionSSRC
            self.streamID = streamID
        }
    }

    /// The forwarding node's offer to one participant of a forwarded room call, in the unified-plan
    /// shape browsers accept (RFC 8829 §5.2, one m-section per stream, all BUNDLEd): first a
    /// `recvonly` audio and video section for what the participant sends, then one `sendonly`
    /// section per stream of the others, mids counting up from 0. Each section is the one
    /// ``make(local:)`` writes for its kind (same codecs, feedback, RTX and extensions), so a
    /// participant answers it with ``JSEPAnswer/make(offer:local:)`` as any offer.
    ///
    /// With `receiveSimulcast` (rids, lowest quality first) the participant's video section asks
    /// for simulcast (RFC 8853 §5.2): an `a=rid:<rid> recv` line per layer, `a=simulcast:recv`
    /// listing them, and the rid header extensions (RFC 8852) by which the forwarder tells the
    /// layers apart when the answer does not name their SSRCs (browsers do not).
    ///
    /// `local.kinds` and `local.sending` are ignored: the sections come from `forwarded`.
    /// - Throws: ``SDPError`` `.invalidArgument` as ``make(local:)`` does, for a stream kind other
    ///   than audio and video, or for a rid that is not a rid-id or repeats.
    public static func makeForwarded(local: LocalParameters, forwarded: [ForwardedStream], receiveSimulcast: [String] = []) throws(SDPError) -> SessionDescription {
        try makeForwarded(local: local, sections: forwarded.enumerated().map { .stream($0.element, mid: String($0.offset + 2)) },
                          receiveSimulcast: receiveSimulcast)
    }

    /// A section of a forwarded offer after the participant's own audio and video.
    public enum ForwardedSection: Hashable, Sendable {
        /// A stream the forwarder sends (`sendonly`).
        case stream(ForwardedStream, mid: String)
        /// A stream the participant added with a later offer (a screen share, RFC 3264 §8.1),
        /// which the forwarder receives (`recvonly`); a kind other than audio or video is
        /// written with port 0 (it was refused).
        case received(kind: String, mid: String)
    }

    /// The forwarding node's offer with its sections after the first two given one by one, each
    /// with its mid: the participant's added streams keep their place and mid (RFC 3264 §8: no
    /// section is removed or reordered), the forwarder's streams take mids no other section has.
    /// - Throws: ``SDPError`` as ``makeForwarded(local:forwarded:receiveSimulcast:)``, and
    ///   `.invalidArgument` for a mid that repeats.
    public static func makeForwarded(local: LocalParameters, sections: [ForwardedSection], receiveSimulcast: [String] = []) throws(SDPError) -> SessionDescription {
        var base = local
        base.kinds = ["audio", "video"]
        base.sending = [:]
        base.sendSimulcast = []
        var offer = try make(local: base)
        if !receiveSimulcast.isEmpty {
            guard receiveSimulcast.allSatisfy(SDPRestrictionIdentifier.isValidID), Set(receiveSimulcast).count == receiveSimulcast.count else {
                throw SDPError(.invalidArgument, "simulcast rids \(receiveSimulcast) must be distinct rid-ids (RFC 8851 §10)")
            }
            offer.media[1].attributes += [
                .extmap(SDPExtensionMap(id: rtpStreamIDExtensionID, uri: RTPHeaderExtensionURI.rtpStreamID)),
                .extmap(SDPExtensionMap(id: repairedRTPStreamIDExtensionID, uri: RTPHeaderExtensionURI.repairedRTPStreamID)),
            ]
            offer.media[1].attributes += receiveSimulcast.map { .rid(SDPRestrictionIdentifier(id: $0, direction: .recv)) }
            offer.media[1].attributes.append(.simulcast(SDPSimulcast(recv: receiveSimulcast.map { [SDPSimulcast.Identifier(rid: $0)] })))
        }
        var streamIDs: Set<String> = []
        for entry in sections {
            var single = local
            single.sendSimulcast = []
            let mid: String
            let direction: SDPDirection
            switch entry {
            case .stream(let stream, let streamMid):
                guard stream.kind == "audio" || stream.kind == "video" else {
                    throw SDPError(.invalidArgument, "a forwarded stream is audio or video, not \(stream.kind)")
                }
                single.kinds = [stream.kind]
                single.sending = [stream.kind: (stream.ssrc, stream.retransmissionSSRC)]
                single.streamID = stream.streamID
                single.cname = stream.streamID
                mid = streamMid
                direction = .sendonly
                streamIDs.insert(stream.streamID)
            case .received(let kind, let receivedMid):
                guard kind == "audio" || kind == "video" else {
                    // A section of another kind was refused when it was added; it keeps its
                    // place and kind with port 0 (RFC 3264 §8.2).
                    offer.media.append(MediaDescription(kind: kind, port: 0, formats: ["0"], connections: [.init()], attributes: [.mid(receivedMid)]))
                    continue
                }
                single.kinds = [kind]
                single.sending = [:]
                mid = receivedMid
                direction = .recvonly
            }
            guard var section = try make(local: single).media.first else { continue }
            section.attributes = section.attributes.compactMap { attribute -> SDPAttribute? in
                switch attribute {
                case .mid: .mid(mid)
                case .direction: .direction(direction)
                // The candidates live in the bundle tag's section only (RFC 9143 §7.1.1).
                case .candidate, .endOfCandidates: nil
                default: attribute
                }
            }
            offer.media.append(section)
        }
        let mids = offer.media.compactMap(\.mid)
        guard Set(mids).count == offer.media.count else {
            throw SDPError(.invalidArgument, "the sections' mids \(offer.media.compactMap(\.mid)) repeat (RFC 8843 §15: a mid is unique in a session)")
        }
        offer.attributes = [.group(SDPGroup(semantics: "BUNDLE", identifiers: mids))]
            + (streamIDs.isEmpty ? [] : [.other(name: "msid-semantic", value: " WMS \(streamIDs.sorted().joined(separator: " "))")])
        return offer
    }
}
