/// Picks, for each media section of a remote offer, the codec meshnode speaks — Opus for audio,
/// VP8 for video — with the feedback and header extensions both sides support (RFC 3264 §6, JSEP
/// RFC 8829 §5.3.1).
public enum CodecNegotiation {
    /// The RTCP feedback meshnode understands (RFC 4585, RFC 5104, REMB, transport-cc).
    public static let supportedFeedback: Set<String> = ["nack", "nack pli", "ccm fir", "goog-remb", "transport-cc"]
    /// The header extensions meshnode reads and writes.
    public static let supportedExtensions: Set<String> = [
        RTPHeaderExtensionURI.mid, RTPHeaderExtensionURI.absSendTime, RTPHeaderExtensionURI.transportWideCC, RTPHeaderExtensionURI.audioLevel,
        RTPHeaderExtensionURI.rtpStreamID, RTPHeaderExtensionURI.repairedRTPStreamID,
    ]

    /// The outcome for one media section.
    public struct Section: Hashable, Sendable {
        /// The section's `a=mid`.
        public var mid: String?
        /// `audio` or `video`.
        public var kind: String
        /// The chosen codec, or `nil` when the section must be rejected (port 0 in the answer).
        public var codec: Codec?
        /// The header extensions kept, by negotiated id.
        public var extensions: [SDPExtensionMap]
        /// The direction the answer takes (RFC 3264 §6.1).
        public var answerDirection: SDPDirection
        /// The SSRCs the offerer announced for this section.
        public var remoteSSRCs: [UInt32]
    }

    /// A chosen codec.
    public struct Codec: Hashable, Sendable {
        /// The payload type the offerer chose for it; the answer uses the same (JSEP §5.3.1).
        public var payloadType: Int
        /// `opus` or `VP8`, as the offer spells it.
        public var encoding: String
        public var clockRate: Int
        public var channels: Int?
        /// The offer's format parameters for it, if any.
        public var parameters: SDPFormatParameters?
        /// The RTCP feedback both sides support.
        public var feedback: [SDPRTCPFeedback]
        /// The RTX payload type bound to it with `apt=` (RFC 4588 §8.6), if offered.
        public var retransmissionPayloadType: Int?

        /// Whether in-band FEC was asked for (`useinbandfec=1`, RFC 7587 §6.1).
        public var usesInbandFEC: Bool { parameters?.values["useinbandfec"] == "1" }
        /// Whether stereo reception was offered (`stereo=1`, RFC 7587 §6.1).
        public var prefersStereo: Bool { parameters?.values["stereo"] == "1" }
        /// Whether DTX was asked for (`usedtx=1`, RFC 7587 §6.1).
        public var usesDTX: Bool { parameters?.values["usedtx"] == "1" }
    }

    /// Negotiates every media section of `offer`.
    ///
    /// - Throws: ``SDPError`` `.negotiationFailed` when no section offers Opus or VP8 with an RTP
    ///   profile and rtcp-mux, so there is nothing to answer with.
    public static func negotiate(offer: SessionDescription) throws(SDPError) -> [Section] {
        let sections = offer.media.map { negotiate(section: $0, live: offer.carriesMedia($0)) }
        guard sections.contains(where: { $0.codec != nil }) else {
            let offered = offer.media.flatMap { $0.rtpMaps.map(\.encoding) }
            throw SDPError(.negotiationFailed, "the offer has no Opus or VP8 section with rtcp-mux; it offers \(offered.isEmpty ? "no RTP codecs" : offered.joined(separator: ", "))")
        }
        return sections
    }

    /// Negotiates one media section. `live` says whether it carries media although its port
    /// is 0 (a bundle-only section, ``SessionDescription/carriesMedia(_:)``); by default only a
    /// nonzero port does.
    public static func negotiate(section media: MediaDescription, live: Bool? = nil) -> Section {
        var section = Section(mid: media.mid, kind: media.kind, codec: nil, extensions: [], answerDirection: media.direction.reversed,
                              remoteSSRCs: media.ssrcs)
        // WebRTC media needs a secure RTP profile with feedback and a live port (RFC 8829 §5.1.2); rtcp-mux is mandatory (RFC 8829 §5.1.1).
        guard live ?? (media.port != 0), media.proto.hasSuffix("RTP/SAVPF") || media.proto.hasSuffix("RTP/SAVP"), media.isRTCPMuxed else {
            return section
        }
        let wanted: (encoding: String, clockRate: Int)
        switch media.kind {
        case "audio": wanted = ("opus", 48_000)
        case "video": wanted = ("vp8", 90_000)
        default: return section
        }
        let maps = media.rtpMaps
        // The offerer lists formats by preference (RFC 3264 §5.1): take the first match in m= order.
        let order = media.formats.compactMap(Int.init)
        guard let map = order.lazy.compactMap({ pt in maps.first { $0.payloadType == pt } })
            .first(where: { $0.encoding.lowercased() == wanted.encoding && $0.clockRate == wanted.clockRate })
        else { return section }

        let feedback = media.feedback(for: map.payloadType).filter { feedback in
            supportedFeedback.contains(feedback.type + (feedback.parameter.map { " \($0)" } ?? ""))
        }.map { SDPRTCPFeedback(payloadType: map.payloadType, type: $0.type, parameter: $0.parameter) }
        let rtx = maps.first { rtx in
            rtx.encoding.lowercased() == "rtx" && media.formatParameters(for: rtx.payloadType)?.values["apt"] == String(map.payloadType)
        }
        section.codec = Codec(payloadType: map.payloadType, encoding: map.encoding, clockRate: map.clockRate, channels: map.channels,
                              parameters: media.formatParameters(for: map.payloadType), feedback: feedback,
                              retransmissionPayloadType: rtx?.payloadType)
        section.extensions = media.extensionMaps.filter { supportedExtensions.contains($0.uri) }
        return section
    }
}
