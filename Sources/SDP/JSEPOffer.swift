/// Builds meshnode's offer (JSEP RFC 8829 §5.2.1): one bundled, rtcp-muxed section per media kind
/// — audio first with Opus/111, then video with VP8/96 and its RTX/97 — with this side's ICE
/// credentials, DTLS fingerprint, `a=setup:actpass` and the SSRCs it sends. Browsers and other
/// WebRTC stacks answer it like any browser's offer.
public enum JSEPOffer {
    /// The payload types meshnode offers (the ones browsers use, so an answer rarely remaps them).
    public static let opusPayloadType = 111
    public static let vp8PayloadType = 96
    public static let rtxPayloadType = 97
    /// The header extension ids meshnode offers (RFC 8285 §5: 1–14 in the one-byte form).
    public static let transportWideCCExtensionID = 3
    /// The ids of the rid extensions (RFC 8852), offered in a section that receives simulcast.
    public static let rtpStreamIDExtensionID = 4
    public static let repairedRTPStreamIDExtensionID = 5
    /// The RFC 6464 client-to-mixer audio level, in audio sections: a forwarder reads it to
    /// tell who speaks without decoding (docs/rooms.md).
    public static let audioLevelExtensionID = 1

    /// What goes into the offer.
    public struct LocalParameters: Sendable {
        public var iceUsernameFragment: String
        public var icePassword: String
        public var fingerprint: SDPFingerprint
        public var cname: String
        public var streamID: String
        /// The kinds offered, in order (`audio`, `video`); each gets a section.
        public var kinds: [String]
        /// Per kind, the SSRC this side sends with and for video the RTX SSRC; a kind without an
        /// entry is offered `recvonly`.
        public var sending: [String: (ssrc: UInt32, retransmissionSSRC: UInt32?)]
        /// The `o=` session id (a random 62-bit number) and version, raised on every new offer
        /// of the session (RFC 8829 §5.2.2).
        public var sessionID: UInt64
        public var sessionVersion: Int
        /// Candidates already gathered, written into the offer (the rest trickle).
        public var candidates: [SDPCandidate]
        /// Whether gathering is done (`a=end-of-candidates`, RFC 8838 §8.2).
        public var gatheringDone: Bool
        /// The rids of the video simulcast layers this side sends, lowest quality first (RFC 8853
        /// §5.2): the video section then has an `a=rid:<rid> send` line per layer, `a=simulcast:send`
        /// listing them and the rid header extensions (RFC 8852), and names no video SSRCs (the
        /// receiver learns each layer's SSRC from its rid, as from a browser). Empty: one stream.
        public var sendSimulcast: [String]

        public init(iceUsernameFragment: String, icePassword: String, fingerprint: SDPFingerprint, cname: String, streamID: String,
                    kinds: [String], sending: [String: (ssrc: UInt32, retransmissionSSRC: UInt32?)], sessionID: UInt64,
                    sessionVersion: Int = 1, candidates: [SDPCandidate] = [], gatheringDone: Bool = false, sendSimulcast: [String] = []) {
            self.sendSimulcast = sendSimulcast
            self.iceUsernameFragment = iceUsernameFragment
            self.icePassword = icePassword
            self.fingerprint = fingerprint
            self.cname = cname
            self.streamID = streamID
            self.kinds = kinds
            self.sending = sending
            self.sessionID = sessionID
            self.sessionVersion = sessionVersion
            self.candidates = candidates
            self.gatheringDone = gatheringDone
        }
    }

    /// Produces the offer.
    ///
    /// - Throws: ``SDPError`` `.invalidArgument` for ICE credentials that are too short, no kinds,
    ///   a kind other than audio and video, or simulcast rids that are not 1–3 distinct rid-ids.
    public static func make(local: LocalParameters) throws(SDPError) -> SessionDescription {
        guard local.iceUsernameFragment.count >= 4, local.icePassword.count >= 22 else {
            throw SDPError(.invalidArgument, "ICE ufrag needs at least 4 and pwd at least 22 characters (RFC 8839 §5.4)")
        }
        guard !local.kinds.isEmpty else { throw SDPError(.invalidArgument, "an offer needs at least one media kind") }
        let simulcast = local.sendSimulcast
        guard simulcast.isEmpty || (simulcast.count <= JSEPAnswer.LocalParameters.maxSimulcastLayers
                                    && simulcast.allSatisfy(SDPRestrictionIdentifier.isValidID) && Set(simulcast).count == simulcast.count) else {
            throw SDPError(.invalidArgument, "simulcast rids \(simulcast) must be 1–\(JSEPAnswer.LocalParameters.maxSimulcastLayers) distinct rid-ids (RFC 8851 §10)")
        }
        var media: [MediaDescription] = []
        var mids: [String] = []
        for (index, kind) in local.kinds.enumerated() {
            let mid = String(index)
            mids.append(mid)
            var attributes: [SDPAttribute] = [
                .iceUsernameFragment(local.iceUsernameFragment), .icePassword(local.icePassword), .iceOptions(["trickle"]),
                .fingerprint(local.fingerprint), .setup(.actpass), .mid(mid),
                .extmap(SDPExtensionMap(id: transportWideCCExtensionID, uri: RTPHeaderExtensionURI.transportWideCC)),
            ]
            let sending = local.sending[kind]
            attributes.append(.direction(sending == nil ? .recvonly : .sendrecv))
            if sending != nil { attributes.append(.msid(SDPMediaStreamID(streamID: local.streamID, trackID: "\(local.streamID)-\(kind)"))) }
            attributes += [.rtcpMux, .rtcpReducedSize]
            let formats: [String]
            switch kind {
            case "audio":
                formats = [String(opusPayloadType)]
                attributes += [
                    .rtpmap(SDPRTPMap(payloadType: opusPayloadType, encoding: "opus", clockRate: 48_000, channels: 2)),
                    .rtcpFeedback(SDPRTCPFeedback(payloadType: opusPayloadType, type: "transport-cc")),
                    .extmap(SDPExtensionMap(id: audioLevelExtensionID, uri: RTPHeaderExtensionURI.audioLevel)),
                    // RFC 7587 §6.1: what this side wants to receive.
                    .fmtp(SDPFormatParameters(payloadType: opusPayloadType, parameters: "minptime=10;useinbandfec=1")),
                ]
            case "video":
                formats = [String(vp8PayloadType), String(rtxPayloadType)]
                attributes.append(.rtpmap(SDPRTPMap(payloadType: vp8PayloadType, encoding: "VP8", clockRate: 90_000)))
                for (type, parameter) in [("goog-remb", nil), ("transport-cc", nil), ("ccm", "fir"), ("nack", nil), ("nack", "pli")] as [(String, String?)] {
                    attributes.append(.rtcpFeedback(SDPRTCPFeedback(payloadType: vp8PayloadType, type: type, parameter: parameter)))
                }
                attributes += [
                    .rtpmap(SDPRTPMap(payloadType: rtxPayloadType, encoding: "rtx", clockRate: 90_000)),
                    .fmtp(SDPFormatParameters(payloadType: rtxPayloadType, parameters: "apt=\(vp8PayloadType)")),
                ]
            default:
                throw SDPError(.invalidArgument, "meshnode offers audio and video sections, not '\(kind)'")
            }
            if sending != nil, kind == "video", !simulcast.isEmpty {
                // RFC 8853 §5.2: the layers by rid; RFC 8852 §3: each packet names its rid.
                attributes += [
                    .extmap(SDPExtensionMap(id: rtpStreamIDExtensionID, uri: RTPHeaderExtensionURI.rtpStreamID)),
                    .extmap(SDPExtensionMap(id: repairedRTPStreamIDExtensionID, uri: RTPHeaderExtensionURI.repairedRTPStreamID)),
                ]
                attributes += simulcast.map { .rid(SDPRestrictionIdentifier(id: $0, direction: .send)) }
                attributes.append(.simulcast(SDPSimulcast(send: simulcast.map { [SDPSimulcast.Identifier(rid: $0)] })))
            } else if let sending {
                var ssrcs = [sending.ssrc]
                if kind == "video", let repair = sending.retransmissionSSRC {
                    ssrcs.append(repair)
                    attributes.append(.ssrcGroup(SDPSourceGroup(semantics: "FID", ssrcs: ssrcs)))
                }
                for ssrc in ssrcs {
                    attributes.append(.ssrc(SDPSourceAttribute(ssrc: ssrc, attribute: "cname", value: local.cname)))
                    attributes.append(.ssrc(SDPSourceAttribute(ssrc: ssrc, attribute: "msid", value: "\(local.streamID) \(local.streamID)-\(kind)")))
                }
            }
            // With BUNDLE the candidates of the first section serve all (RFC 9143 §7.1.1); JSEP
            // repeats them in the bundle tag's section only.
            if index == 0 {
                attributes += local.candidates.map { .candidate($0) }
                if local.gatheringDone { attributes.append(.endOfCandidates) }
            }
            media.append(MediaDescription(kind: kind, port: 9, proto: "UDP/TLS/RTP/SAVPF", formats: formats, connections: [.init()],
                                          attributes: attributes))
        }
        return SessionDescription(
            origin: .init(sessionID: String(local.sessionID & 0x3FFF_FFFF_FFFF_FFFF), sessionVersion: String(local.sessionVersion)),
            attributes: [.group(SDPGroup(semantics: "BUNDLE", identifiers: mids)), .other(name: "msid-semantic", value: " WMS \(local.streamID)")],
            media: media)
    }
}

/// The transport parameters of a bundled description, wherever the sender put them: JSEP writes
/// them into every section, some stacks put the fingerprint or ICE options at session level
/// (RFC 8839 §5.4 and RFC 8122 §5 allow both).
public struct SDPTransportParameters: Sendable, Hashable {
    public var iceUsernameFragment: String
    public var icePassword: String
    public var fingerprint: SDPFingerprint
    public var setup: SDPSetupRole
    /// The candidates written into the description (of the bundle's first section).
    public var candidates: [SDPCandidate]
    /// Whether the description says `a=end-of-candidates`.
    public var gatheringDone: Bool

    /// Reads them from the first section that is not rejected, then from the session level.
    ///
    /// - Throws: ``SDPError`` `.negotiationFailed` naming the missing attribute.
    public init(_ description: SessionDescription) throws(SDPError) {
        let section = description.media.first { description.carriesMedia($0) }
        let attributes = (section?.attributes ?? []) + description.attributes
        var ufrag: String?, password: String?, fingerprint: SDPFingerprint?, setup: SDPSetupRole?
        var candidates: [SDPCandidate] = []
        var done = false
        for attribute in attributes {
            switch attribute {
            case .iceUsernameFragment(let value): ufrag = ufrag ?? value
            case .icePassword(let value): password = password ?? value
            case .fingerprint(let value): fingerprint = fingerprint ?? value
            case .setup(let value): setup = setup ?? value
            case .candidate(let value): candidates.append(value)
            case .endOfCandidates: done = true
            default: break
            }
        }
        guard let ufrag, let password else { throw SDPError(.negotiationFailed, "the description has no a=ice-ufrag/a=ice-pwd (RFC 8839 §5.4)") }
        guard let fingerprint else { throw SDPError(.negotiationFailed, "the description has no a=fingerprint (RFC 8122 §5): DTLS cannot be authenticated") }
        self.iceUsernameFragment = ufrag
        self.icePassword = password
        self.fingerprint = fingerprint
        // RFC 8842 §5.3: a missing a=setup means actpass in an offer, active in an answer; the caller decides.
        self.setup = setup ?? .actpass
        self.candidates = candidates
        self.gatheringDone = done
    }
}

extension SDPCandidate {
    /// Parses a trickled candidate as RTCIceCandidate carries it: `candidate:…`, or `a=candidate:…`.
    public init(line: String) throws(SDPError) {
        var text = Substring(line)
        while let last = text.last, last.isNewline { text = text.dropLast() }
        if text.hasPrefix("a=") { text = text.dropFirst(2) }
        guard text.hasPrefix("candidate:") else {
            throw SDPError(.sdpSyntax, "'\(line.prefix(60))' is not a candidate line (RFC 8839 §5.1)")
        }
        try self.init(parsing: text.dropFirst("candidate:".count))
    }
}
