import SDP
import RTP
/// What an offer/answer exchange settled for one media kind: the payload types both directions use
/// (JSEP keeps the offerer's, RFC 8829 §5.3.1), the feedback and header extensions in force, the
/// SSRCs the peer announced, and which directions flow.
public struct NegotiatedStream: Sendable, Hashable {
    /// `audio` or `video`.
    public var kind: String
    public var mid: String?
    public var payloadType: UInt8
    /// RTX (RFC 4588) payload type for video, when negotiated.
    public var rtxPayloadType: UInt8?
    /// Feedback in force: NACK, PLI, transport-cc.
    public var nack: Bool
    public var pictureLossIndication: Bool
    public var transportCC: Bool
    /// The transport-wide sequence number extension id (RFC 8285), when negotiated.
    public var transportCCExtensionID: UInt8?
    /// The RFC 6464 audio level extension id (audio), when negotiated.
    public var audioLevelExtensionID: UInt8?
    /// Whether Opus in-band FEC was asked for by the peer.
    public var opusFEC: Bool
    /// The SSRCs the peer announced (`a=ssrc`); empty when it sends unsignalled.
    public var remoteSSRCs: [UInt32]
    public var sends: Bool
    public var receives: Bool
    /// The simulcast layers in force (RFC 8853), by rid in the order of `a=simulcast` (the
    /// offerer's order: meshnode lists them lowest quality first); empty without simulcast. For a
    /// stream this side sends, the layers it sends; else the layers it receives.
    public var simulcastRIDs: [String] = []
    /// The `rtp-stream-id` and `repaired-rtp-stream-id` extension ids (RFC 8852 §3), when negotiated.
    public var ridExtensionID: UInt8?
    public var repairedRIDExtensionID: UInt8?

    /// Reads one section's outcome. `local` is the direction this side takes for it (for an answer,
    /// the answer's direction; for an offer, the offer's), `peer` the peer's section.
    public init?(section: CodecNegotiation.Section, localDirection: SDPDirection, peer: MediaDescription) {
        guard let codec = section.codec, let payloadType = UInt8(exactly: codec.payloadType) else { return nil }
        kind = section.kind
        mid = section.mid
        self.payloadType = payloadType
        rtxPayloadType = codec.retransmissionPayloadType.flatMap(UInt8.init(exactly:))
        let feedback = Set(codec.feedback.map { $0.type + ($0.parameter.map { " \($0)" } ?? "") })
        nack = feedback.contains("nack")
        pictureLossIndication = feedback.contains("nack pli")
        transportCC = feedback.contains("transport-cc")
        transportCCExtensionID = section.extensions.first { $0.uri == RTPHeaderExtensionURI.transportWideCC }.flatMap { UInt8(exactly: $0.id) }
        audioLevelExtensionID = section.extensions.first { $0.uri == RTPHeaderExtensionURI.audioLevel }.flatMap { UInt8(exactly: $0.id) }
        opusFEC = codec.usesInbandFEC
        ridExtensionID = section.extensions.first { $0.uri == RTPHeaderExtensionURI.rtpStreamID }.flatMap { UInt8(exactly: $0.id) }
        repairedRIDExtensionID = section.extensions.first { $0.uri == RTPHeaderExtensionURI.repairedRTPStreamID }.flatMap { UInt8(exactly: $0.id) }
        remoteSSRCs = peer.ssrcs
        sends = localDirection == .sendrecv || localDirection == .sendonly
        receives = localDirection == .sendrecv || localDirection == .recvonly
        if !nack { rtxPayloadType = nil }
    }

    /// The streams of an answer this side makes to `offer` (it answered with `answer`).
    public static func fromAnswering(offer: SessionDescription, answer: SessionDescription) throws -> [NegotiatedStream] {
        let sections = try CodecNegotiation.negotiate(offer: offer)
        var streams: [NegotiatedStream] = []
        for ((section, offered), answered) in zip(zip(sections, offer.media), answer.media) {
            guard var stream = NegotiatedStream(section: section, localDirection: answered.direction, peer: offered) else { continue }
            // What this side sends in simulcast: its answer's send list (RFC 8853 §5.3).
            if stream.sends { stream.simulcastRIDs = try answered.simulcastRIDs(.send) }
            if stream.simulcastRIDs.isEmpty, stream.receives {
                // What the offerer sends in simulcast: the answer's recv list, part of the offer's send list.
                let received = try answered.simulcastRIDs(.recv)
                let offeredRIDs = try offered.simulcastRIDs(.send)
                guard received.allSatisfy(offeredRIDs.contains) else {
                    throw MediaError(.negotiationFailed, "the answer receives simulcast rids \(received), the offer sends \(offeredRIDs) (RFC 8853 §5.3)")
                }
                stream.simulcastRIDs = received
            }
            streams.append(stream)
        }
        return streams
    }

    /// The streams of this side's `offer` once the peer's `answer` came back: the codec and
    /// extensions the answer kept (RFC 3264 §6), directions as the offer asked and the answer allows.
    public static func fromOffering(offer: SessionDescription, answer: SessionDescription) throws -> [NegotiatedStream] {
        guard answer.media.count == offer.media.count else {
            throw MediaError(.negotiationFailed, "the answer has \(answer.media.count) media sections, the offer \(offer.media.count) (RFC 3264 §6)")
        }
        var streams: [NegotiatedStream] = []
        for (offered, answered) in zip(offer.media, answer.media) where answer.carriesMedia(answered) {
            let section = CodecNegotiation.negotiate(section: answered, live: true)
            // The answer's direction is the peer's; ours is its mirror image (RFC 3264 §6.1).
            guard let stream = NegotiatedStream(section: section, localDirection: answered.direction.reversed, peer: answered) else { continue }
            var adjusted = stream
            adjusted.sends = stream.sends && (offered.direction == .sendrecv || offered.direction == .sendonly)
            if adjusted.receives {
                // The peer sends what its answer lists, and only rids this side offered to take (RFC 8853 §5.3).
                let offeredRIDs = try offered.simulcastRIDs(.recv)
                let sent = try answered.simulcastRIDs(.send)
                guard sent.allSatisfy(offeredRIDs.contains) else {
                    throw MediaError(.negotiationFailed, "the answer sends simulcast rids \(sent), the offer asked for \(offeredRIDs) (RFC 8853 §5.3)")
                }
                adjusted.simulcastRIDs = offeredRIDs.filter(sent.contains)
            }
            if adjusted.sends {
                // This side offered to send simulcast; it sends the layers the answer takes
                // (RFC 8853 §5.3), or one stream when the answer took none.
                let offeredRIDs = try offered.simulcastRIDs(.send)
                let taken = try answered.simulcastRIDs(.recv)
                guard taken.allSatisfy(offeredRIDs.contains) else {
                    throw MediaError(.negotiationFailed, "the answer receives simulcast rids \(taken), the offer sends \(offeredRIDs) (RFC 8853 §5.3)")
                }
                if !offeredRIDs.isEmpty { adjusted.simulcastRIDs = offeredRIDs.filter(taken.contains) }
            }
            streams.append(adjusted)
        }
        guard !streams.isEmpty else {
            throw MediaError(.negotiationFailed, "the answer accepted no Opus or VP8 section")
        }
        return streams
    }
}
