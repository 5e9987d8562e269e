/// The URIs browsers negotiate with `a=extmap` for the extensions meshnode reads and writes.
public enum RTPHeaderExtensionURI {
    /// RFC 9143 §15: the media identification (`a=mid`) as a string.
    public static let mid = "urn:ietf:params:rtp-hdrext:sdes:mid"
    /// The absolute send time extension: 24-bit 6.18 fixed-point seconds.
    public static let absSendTime = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
    /// draft-holmer-rmcat-transport-wide-cc-extensions-01 §2: a 16-bit transport-wide sequence number.
    public static let transportWideCC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
    /// RFC 6464: client-to-mixer audio level.
    public static let audioLevel = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
    /// RFC 8852 §3.1: the RTP stream id (`rid`) of a simulcast encoding.
    public static let rtpStreamID = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
    /// RFC 8852 §3.2: the rid of the stream an RTX packet repairs.
    public static let repairedRTPStreamID = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
}
