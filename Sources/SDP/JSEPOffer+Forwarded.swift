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
        for stream in forwarded {
            var single = local
            single.kinds = [stream.kind]
            single.sending = [stream.kind: (stream.ssrc, stream.retransmissionSSRC)]
            single.sendSimulcast = []
            single.streamID = stream.streamID
            single.cname = stream.streamID
            guard var section = try make(local: single).media.first else { continue }
            let mid = String(offer.media.count)
            section.attributes = section.attributes.compactMap { attribute -> SDPAttribute? in
                switch attribute {
                case .mid: .mid(mid)
                case .direction: .direction(.sendonly)
                // The candidates live in the bundle tag's section only (RFC 9143 §7.1.1).
                case .candidate, .endOfCandidates: nil
                default: attribute
                }
            }
            offer.media.append(section)
        }
        let mids = offer.media.compactMap(\.mid)
        let streamIDs = Array(Set(forwarded.map(\.streamID))).sorted()
        offer.attributes = [.group(SDPGroup(semantics: "BUNDLE", identifiers: mids))]
            + (streamIDs.isEmpty ? [] : [.other(name: "msid-semantic", value: " WMS \(streamIDs.joined(separator: " "))")])
        return offer
    }
}
