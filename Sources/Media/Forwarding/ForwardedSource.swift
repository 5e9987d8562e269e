import RTP

/// One stream a participant sends to the forwarder, as its SDP declared it (`a=ssrc`, the
/// m-section's payload type, `a=ssrc-group:FID` for RTX, RFC 4588 §8).
public struct ForwardedSource: Hashable, Sendable {
    /// Audio or video: which cache size applies and whether the audio level is read.
    public enum Kind: String, Hashable, Sendable {
        case audio, video
    }

    /// A retransmission stream (RFC 4588) paired with the source.
    public struct Retransmission: Hashable, Sendable {
        /// The RTX payload type (`a=fmtp:<pt> apt=…`).
        public var payloadType: UInt8
        /// The RTX SSRC (second SSRC of `a=ssrc-group:FID`).
        public var ssrc: UInt32

        /// Creates an RTX stream description.
        public init(payloadType: UInt8, ssrc: UInt32) {
            self.payloadType = payloadType
            self.ssrc = ssrc
        }
    }

    /// Audio or video.
    public var kind: Kind
    /// The source's SSRC.
    public var ssrc: UInt32
    /// The payload type the participant sends (its negotiated Opus or VP8 type).
    public var payloadType: UInt8
    /// Its RTX stream, when negotiated.
    public var retransmission: Retransmission?
    /// For a VP8 simulcast source (RFC 8853): the rids of its layers, lowest quality first, as
    /// the forwarder's offer listed them; empty for a single stream. The layers' SSRCs are not
    /// declared (browsers do not name them): the forwarder learns each from the first packet
    /// that carries a declared rid in the `rtp-stream-id` extension (RFC 8852 §3.1), and each RTX
    /// SSRC from `repaired-rtp-stream-id`. ``ssrc`` and ``retransmission``'s SSRC are then unused.
    public var simulcastRIDs: [String] = []
    /// The RTX payload type of a simulcast source's layers.
    public var simulcastRetransmissionPayloadType: UInt8?

    /// Creates a source description.
    public init(kind: Kind, ssrc: UInt32, payloadType: UInt8, retransmission: Retransmission? = nil) {
        self.kind = kind
        self.ssrc = ssrc
        self.payloadType = payloadType
        self.retransmission = retransmission
    }

    /// A VP8 simulcast source of `rids` (lowest quality first), its layers' SSRCs to be learned from their rids.
    public static func simulcast(rids: [String], payloadType: UInt8, retransmissionPayloadType: UInt8?) -> ForwardedSource {
        var source = ForwardedSource(kind: .video, ssrc: 0, payloadType: payloadType)
        source.simulcastRIDs = rids
        source.simulcastRetransmissionPayloadType = retransmissionPayloadType
        return source
    }
}

/// Which simulcast layer the forwarder sends one receiver of one sender's video, and why.
public struct ForwardedLayerState: Hashable, Sendable, Codable {
    /// The receiver and the sender.
    public var receiver: String
    public var sender: String
    /// The layer sent now (0 the lowest), `nil` before the first key frame.
    public var layer: Int?
    /// The layer chosen from the receiver's estimate; the switch happens at its next key frame.
    public var target: Int
    /// The rid of ``layer``.
    public var rid: String?
    /// The receiver's bandwidth estimate, bits per second.
    public var estimate: Double
    /// Switches of this stream so far.
    public var switches: Int
    /// The receiver's budget leaves this video out for now (``layer`` is `nil` then).
    public var paused: Bool = false
}

/// The RTP header extension ids one participant negotiated (RFC 8285 `a=extmap`); the forwarder
/// reads them on what the participant sends and writes them on what it sends to the participant.
public struct ForwardingExtensionIDs: Hashable, Sendable {
    /// `urn:ietf:params:rtp-hdrext:sdes:mid` (RFC 9143 §15).
    public var mid: UInt8?
    /// `urn:ietf:params:rtp-hdrext:ssrc-audio-level` (RFC 6464).
    public var audioLevel: UInt8?
    /// The transport-wide sequence number (draft-holmer-rmcat-transport-wide-cc-extensions-01 §2).
    public var transportWideCC: UInt8?
    /// `rtp-stream-id` and `repaired-rtp-stream-id` (RFC 8852 §3): the rid of a simulcast layer.
    public var rtpStreamID: UInt8?
    public var repairedRTPStreamID: UInt8?

    /// Creates the id set; nil for an extension not negotiated.
    public init(mid: UInt8? = nil, audioLevel: UInt8? = nil, transportWideCC: UInt8? = nil, rtpStreamID: UInt8? = nil, repairedRTPStreamID: UInt8? = nil) {
        self.mid = mid
        self.audioLevel = audioLevel
        self.transportWideCC = transportWideCC
        self.rtpStreamID = rtpStreamID
        self.repairedRTPStreamID = repairedRTPStreamID
    }
}

/// How a stream the forwarder sends to one receiver was negotiated in that receiver's SDP: its
/// m-section's `mid` and the payload type the receiver chose for the codec.
public struct ForwardingBinding: Hashable, Sendable {
    /// The m-section's mid, written in the mid extension when the receiver negotiated it.
    public var mid: String
    /// The receiver's payload type for the source's codec.
    public var payloadType: UInt8
    /// The receiver's RTX payload type (RFC 4588 `apt=`), when it negotiated RTX for a video
    /// stream: retransmissions from the cache then go in the stream's RTX SSRC. Without RTX they
    /// resend the packet as it was, which an SRTP sender that refuses repeated sequence numbers cannot.
    public var retransmissionPayloadType: UInt8?

    /// Creates a binding.
    public init(mid: String, payloadType: UInt8, retransmissionPayloadType: UInt8? = nil) {
        self.mid = mid
        self.payloadType = payloadType
        self.retransmissionPayloadType = retransmissionPayloadType
    }
}

/// A stream the forwarder sends (or will send, once bound) to a receiver.
public struct ForwardedStreamDescription: Hashable, Sendable {
    /// The SSRC the forwarder sends it with (for `a=ssrc` in the receiver's SDP).
    public var ssrc: UInt32
    /// Audio or video.
    public var kind: ForwardedSource.Kind
    /// The participant whose stream it carries.
    public var from: String
    /// The SSRC that participant sends it with.
    public var sourceSSRC: UInt32
    /// The RTX SSRC of a video stream (for `a=ssrc-group:FID`, RFC 4588 §8).
    public var retransmissionSSRC: UInt32?
    /// Its m-section in the receiver's SDP, once negotiated; nothing is forwarded before.
    public var binding: ForwardingBinding?
}

/// A packet the forwarder sends: to which participant, and what.
public enum ForwarderOutput: Hashable, Sendable {
    /// An RTP packet (forwarded, or a retransmission from the cache).
    case rtp(to: String, RTPPacket)
    /// A compound RTCP packet (a translated sender report, a PLI/FIR/NACK to a source, a BYE).
    case rtcp(to: String, [RTCPPacket])
}
