/// Builds the answer to a remote offer (JSEP RFC 8829 §5.3.1, RFC 3264 §6) from what
/// ``CodecNegotiation`` chose: one media section per offered section, in the same order, with
/// the chosen codec, this side's ICE credentials, DTLS fingerprint and role, and the SSRCs it sends.
public enum JSEPAnswer {
    /// What this side puts in every accepted section.
    public struct LocalParameters: Sendable {
        /// `a=ice-ufrag` (RFC 8839 §5.4): at least 4 ICE characters.
        public var iceUsernameFragment: String
        /// `a=ice-pwd` (RFC 8839 §5.4): at least 22 ICE characters.
        public var icePassword: String
        /// The fingerprint of the certificate this side will present in DTLS (RFC 8122 §5).
        public var fingerprint: SDPFingerprint
        /// The DTLS role; JSEP answers `active` to an `actpass` offer (RFC 8842 §5.3).
        public var setup: SDPSetupRole
        /// The RTCP CNAME of every source this side sends (RFC 7022).
        public var cname: String
        /// The MediaStream id this side's tracks belong to (RFC 8830).
        public var streamID: String
        /// Per media kind (`audio`, `video`), the SSRC this side sends with, and for video the RTX SSRC
        /// (RFC 4588); a kind without an entry is received only.
        public var sending: [String: (ssrc: UInt32, retransmissionSSRC: UInt32?)]
        /// The `o=` session id (JSEP §5.3.1: a random 62-bit number).
        public var sessionID: UInt64
        /// Whether this side sends video simulcast when the offer asks for it (`a=simulcast:recv`,
        /// RFC 8853 §5.3): the answer then sends the offered rids (at most ``maxSimulcastLayers``),
        /// in the offer's order, and names no video SSRCs: the layers are told apart by the rid
        /// header extension (RFC 8852), as browsers do.
        public var sendsSimulcast: Bool
        /// Whether this side receives video simulcast when the offer sends it (`a=simulcast:send`,
        /// RFC 8853 §5.3): the answer then receives the offered rids (at most
        /// ``maxSimulcastLayers``, those whose `pt=` restriction allows the chosen codec) with
        /// `a=rid:<rid> recv` and `a=simulcast:recv`. The offer must negotiate the `rtp-stream-id`
        /// extension (RFC 8852 §3.1): a browser names no SSRCs for its layers, so the rid in each
        /// packet is the only way to tell them apart. A forwarding node answers this way.
        public var receivesSimulcast: Bool

        /// The most simulcast layers an answer sends or receives.
        public static let maxSimulcastLayers = 3

        public init(iceUsernameFragment: String, icePassword: String, fingerprint: SDPFingerprint, setup: SDPSetupRole = .active,
                    cname: String, streamID: String, sending: [String: (ssrc: UInt32, retransmissionSSRC: UInt32?)], sessionID: UInt64,
                    sendsSimulcast: Bool = false, receivesSimulcast: Bool = false) {
            self.sendsSimulcast = sendsSimulcast
            self.receivesSimulcast = receivesSimulcast
            self.iceUsernameFragment = iceUsernameFragment
            self.icePassword = icePassword
            self.fingerprint = fingerprint
            self.setup = setup
            self.cname = cname
            self.streamID = streamID
            self.sending = sending
            self.sessionID = sessionID
        }
    }

    /// Produces the answer.
    ///
    /// - Throws: ``SDPError`` `.negotiationFailed` when nothing in the offer is acceptable (see
    ///   ``CodecNegotiation/negotiate(offer:)``) or, with ``LocalParameters/receivesSimulcast``, the
    ///   offer sends simulcast without the `rtp-stream-id` extension or with no layer in the chosen
    ///   codec; `.sdpSyntax` for simulcast rids that do not match the section's `a=rid` lines
    ///   (RFC 8853 §5.1); `.invalidArgument` for ICE credentials that are too short or a DTLS role
    ///   an answer cannot take.
    public static func make(offer: SessionDescription, local: LocalParameters) throws(SDPError) -> SessionDescription {
        guard local.iceUsernameFragment.count >= 4, local.icePassword.count >= 22 else {
            throw SDPError(.invalidArgument, "ICE ufrag needs at least 4 and pwd at least 22 characters (RFC 8839 §5.4)")
        }
        guard local.setup == .active || local.setup == .passive else {
            throw SDPError(.invalidArgument, "an answer's setup is active or passive, not \(local.setup.rawValue) (RFC 8842 §5.3)")
        }
        let sections = try CodecNegotiation.negotiate(offer: offer)
        var media: [MediaDescription] = []
        var bundled: [String] = []
        var sendsAnything = false
        for (offered, section) in zip(offer.media, sections) {
            guard let codec = section.codec else {
                // RFC 3264 §6: a rejected stream keeps its place with port 0.
                var rejected = MediaDescription(kind: offered.kind, port: 0, proto: offered.proto, formats: Array(offered.formats.prefix(1)),
                                                connections: [.init()])
                if let mid = offered.mid { rejected.attributes.append(.mid(mid)) }
                media.append(rejected)
                continue
            }
            let sending = local.sending[section.kind]
            let offerSends = offered.direction == .sendrecv || offered.direction == .sendonly
            let offerReceives = offered.direction == .sendrecv || offered.direction == .recvonly
            let weSend = sending != nil && offerReceives
            let direction: SDPDirection = switch (weSend, offerSends) {
            case (true, true): .sendrecv
            case (true, false): .sendonly
            case (false, true): .recvonly
            case (false, false): .inactive
            }
            sendsAnything = sendsAnything || weSend

            var formats = [String(codec.payloadType)]
            if let rtx = codec.retransmissionPayloadType { formats.append(String(rtx)) }
            var attributes: [SDPAttribute] = [
                .iceUsernameFragment(local.iceUsernameFragment), .icePassword(local.icePassword), .iceOptions(["trickle"]),
                .fingerprint(local.fingerprint), .setup(local.setup),
            ]
            if let mid = section.mid {
                attributes.append(.mid(mid))
                bundled.append(mid)
            }
            attributes += section.extensions.map { .extmap(SDPExtensionMap(id: $0.id, uri: $0.uri)) }
            attributes.append(.direction(direction))
            if weSend { attributes.append(.msid(SDPMediaStreamID(streamID: local.streamID, trackID: "\(local.streamID)-\(section.kind)"))) }
            attributes.append(.rtcpMux)
            if offered.attributes.contains(.rtcpReducedSize) { attributes.append(.rtcpReducedSize) }
            attributes.append(.rtpmap(SDPRTPMap(payloadType: codec.payloadType, encoding: codec.encoding, clockRate: codec.clockRate, channels: codec.channels)))
            attributes += codec.feedback.map { .rtcpFeedback($0) }
            if section.kind == "audio" {
                // What this side wants to receive (RFC 7587 §6.1): 10 ms minimum packets, FEC welcome.
                attributes.append(.fmtp(SDPFormatParameters(payloadType: codec.payloadType, parameters: "minptime=10;useinbandfec=1")))
            }
            if let rtx = codec.retransmissionPayloadType {
                attributes.append(.rtpmap(SDPRTPMap(payloadType: rtx, encoding: "rtx", clockRate: codec.clockRate)))
                attributes.append(.fmtp(SDPFormatParameters(payloadType: rtx, parameters: "apt=\(codec.payloadType)")))
            }
            // RFC 8853 §5.3: the answer's send list is the offer's recv list, or part of it.
            let offeredRIDs = section.kind == "video" && weSend && local.sendsSimulcast ? try offered.simulcastRIDs(.recv) : []
            let simulcastRIDs = Array(offeredRIDs.prefix(LocalParameters.maxSimulcastLayers))
            let receivedRIDs = section.kind == "video" && offerSends && local.receivesSimulcast
                ? try receivableSimulcastRIDs(offered, codec: codec, extensions: section.extensions) : []
            if !simulcastRIDs.isEmpty || !receivedRIDs.isEmpty {
                attributes += simulcastRIDs.map { .rid(SDPRestrictionIdentifier(id: $0, direction: .send)) }
                attributes += receivedRIDs.map { .rid(SDPRestrictionIdentifier(id: $0, direction: .recv)) }
                attributes.append(.simulcast(SDPSimulcast(send: simulcastRIDs.map { [SDPSimulcast.Identifier(rid: $0)] },
                                                          recv: receivedRIDs.map { [SDPSimulcast.Identifier(rid: $0)] })))
            }
            if simulcastRIDs.isEmpty, weSend, let sending {
                var ssrcs = [sending.ssrc]
                if let repair = sending.retransmissionSSRC, codec.retransmissionPayloadType != nil {
                    ssrcs.append(repair)
                    attributes.append(.ssrcGroup(SDPSourceGroup(semantics: "FID", ssrcs: ssrcs)))
                }
                for ssrc in ssrcs {
                    attributes.append(.ssrc(SDPSourceAttribute(ssrc: ssrc, attribute: "cname", value: local.cname)))
                    attributes.append(.ssrc(SDPSourceAttribute(ssrc: ssrc, attribute: "msid", value: "\(local.streamID) \(local.streamID)-\(section.kind)")))
                }
            }
            media.append(MediaDescription(kind: offered.kind, port: 9, proto: "UDP/TLS/RTP/SAVPF", formats: formats, connections: [.init()],
                                          attributes: attributes))
        }
        var sessionAttributes: [SDPAttribute] = []
        // Bundle only what the offer bundled and this side accepted (RFC 9143 §7.3).
        if let offeredBundle = offer.bundleGroup {
            let accepted = bundled.filter(offeredBundle.contains)
            if !accepted.isEmpty { sessionAttributes.append(.group(SDPGroup(semantics: "BUNDLE", identifiers: accepted))) }
        }
        if sendsAnything { sessionAttributes.append(.other(name: "msid-semantic", value: " WMS \(local.streamID)")) }
        return SessionDescription(origin: .init(sessionID: String(local.sessionID & 0x3FFF_FFFF_FFFF_FFFF), sessionVersion: "2"),
                                  attributes: sessionAttributes, media: media)
    }

    /// The layers an answer that receives simulcast takes of an offered section (RFC 8853 §5.3:
    /// the answer's recv list is the offer's send list or part of it): the offer's order, paused
    /// streams left out, rids whose `pt=` restriction excludes the chosen codec left out (RFC 8851
    /// §6), at most ``LocalParameters/maxSimulcastLayers``.
    static func receivableSimulcastRIDs(_ offered: MediaDescription, codec: CodecNegotiation.Codec,
                                        extensions: [SDPExtensionMap]) throws(SDPError) -> [String] {
        let sent = try offered.simulcastRIDs(.send)
        guard !sent.isEmpty else { return [] }
        guard extensions.contains(where: { $0.uri == RTPHeaderExtensionURI.rtpStreamID }) else {
            throw SDPError(.negotiationFailed, "the offer sends simulcast \(sent) without the rtp-stream-id header extension (RFC 8852 §3.1): its layers cannot be told apart")
        }
        let restrictions = Dictionary(offered.restrictionIdentifiers.map { ($0.id, $0.payloadTypes) }, uniquingKeysWith: { first, _ in first })
        let usable = sent.filter { restrictions[$0]?.isEmpty != false || restrictions[$0]!.contains(codec.payloadType) }
        guard !usable.isEmpty else {
            throw SDPError(.negotiationFailed, "no simulcast layer of \(sent) may use \(codec.encoding) (payload type \(codec.payloadType), RFC 8851 §6)")
        }
        return Array(usable.prefix(LocalParameters.maxSimulcastLayers))
    }
}
