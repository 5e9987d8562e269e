/// An error of the DTLS-SRTP transport: a machine-readable ``Code`` and a reason a person can
/// act on (which fingerprint was expected, which profile was missing, which packet was refused).
public struct TransportError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Hashable, Sendable {
            case fingerprintMismatch, invalidFingerprint, handshakeFailed, handshakeTimeout, noSRTPProfile
            case srtpFailure, authenticationFailed, replayed, notConnected, closed, invalidArgument
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The peer's certificate does not hash to the `a=fingerprint` from its signed SDP
        /// (RFC 8122 §5, RFC 8842 §5.1): the session is refused.
        public static let fingerprintMismatch = Code(.fingerprintMismatch)
        /// A fingerprint uses an unknown hash function or has the wrong length for it.
        public static let invalidFingerprint = Code(.invalidFingerprint)
        /// OpenSSL aborted the DTLS handshake (an alert, a protocol error, no common cipher).
        public static let handshakeFailed = Code(.handshakeFailed)
        /// No handshake completed within the configured time (RFC 6347 §4.2.4 retransmissions
        /// went unanswered).
        public static let handshakeTimeout = Code(.handshakeTimeout)
        /// The peer negotiated no `use_srtp` profile we offered (RFC 5764 §4.1.2).
        public static let noSRTPProfile = Code(.noSRTPProfile)
        /// libsrtp2 refused a key, a policy or a packet for a reason other than the two below.
        public static let srtpFailure = Code(.srtpFailure)
        /// An SRTP/SRTCP packet failed its authentication tag check (RFC 3711 §3.3, RFC 7714 §9).
        public static let authenticationFailed = Code(.authenticationFailed)
        /// An SRTP/SRTCP packet was already received or is older than the replay window
        /// (RFC 3711 §3.3.2).
        public static let replayed = Code(.replayed)
        /// Media was sent before the DTLS handshake exported SRTP keys.
        public static let notConnected = Code(.notConnected)
        /// The transport was closed (locally or by the peer's close_notify).
        public static let closed = Code(.closed)
        /// A caller passed a value outside the allowed range.
        public static let invalidArgument = Code(.invalidArgument)

        /// The code's name, for logs.
        public var description: String { value.rawValue }
    }

    /// What kind of failure this is.
    public var code: Code
    /// Why it failed.
    public var reason: String

    /// Creates an error with a code and a reason.
    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    /// `TransportError(code): reason`.
    public var description: String { "TransportError(\(code)): \(reason)" }
}
