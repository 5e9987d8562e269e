public import MeshCore

/// The DTLS-SRTP layer's errors.
public enum TransportLayer: ErrorLayer { public static let name = "TransportError" }

/// An error of the DTLS-SRTP transport: which fingerprint was expected, which profile was
/// missing, which packet was refused.
public typealias TransportError = LayerError<TransportLayer>

extension LayerError.Code where Layer == TransportLayer {
    /// The peer's certificate does not hash to the `a=fingerprint` from its signed SDP
    /// (RFC 8122 §5, RFC 8842 §5.1): the session is refused.
    public static let fingerprintMismatch = Self("fingerprintMismatch")
    /// A fingerprint uses an unknown hash function or has the wrong length for it.
    public static let invalidFingerprint = Self("invalidFingerprint")
    /// OpenSSL aborted the DTLS handshake (an alert, a protocol error, no common cipher).
    public static let handshakeFailed = Self("handshakeFailed")
    /// No handshake completed within the configured time (RFC 6347 §4.2.4 retransmissions
    /// went unanswered).
    public static let handshakeTimeout = Self("handshakeTimeout")
    /// The peer negotiated no `use_srtp` profile we offered (RFC 5764 §4.1.2).
    public static let noSRTPProfile = Self("noSRTPProfile")
    /// libsrtp2 refused a key, a policy or a packet for a reason other than the two below.
    public static let srtpFailure = Self("srtpFailure")
    /// An SRTP/SRTCP packet failed its authentication tag check (RFC 3711 §3.3, RFC 7714 §9).
    public static let authenticationFailed = Self("authenticationFailed")
    /// An SRTP/SRTCP packet was already received or is older than the replay window
    /// (RFC 3711 §3.3.2).
    public static let replayed = Self("replayed")
    /// Media was sent before the DTLS handshake exported SRTP keys.
    public static let notConnected = Self("notConnected")
    /// The transport was closed (locally or by the peer's close_notify).
    public static let closed = Self("closed")
    /// A caller passed a value outside the allowed range.
    public static let invalidArgument = Self("invalidArgument")
}
