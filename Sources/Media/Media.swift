/// The media engine: DTLS-SRTP, RTP/RTCP, SDP, codecs, sources and sinks.
/// Filled in by the transport and media issues; the foundation only gives the module its place.
public enum MediaDefaults {
    /// Opus's RTP clock rate (RFC 7587 §4.1).
    public static let opusClockRate = 48_000
}
