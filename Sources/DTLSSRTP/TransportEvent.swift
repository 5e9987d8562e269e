public import NIOCore

/// What a ``DTLSSRTPTransport`` reports, in order.
public enum TransportEvent: Sendable {
    /// The DTLS handshake completed, the peer's certificate matched its fingerprint and
    /// SRTP keys for `profile` are in place: media can flow.
    case connected(SRTPProfile)
    /// A decrypted, authenticated RTP packet from the peer, which came off the path's socket at
    /// `arrival` (``DatagramEvent/received(_:arrival:)``), before the queues and the decryption
    /// between there and this event's reader: a receive-side estimate (transport-cc feedback,
    /// jitter) takes this time, not the time it reads the event.
    case rtp(ByteBuffer, arrival: ContinuousClock.Instant)
    /// A decrypted, authenticated (compound) RTCP packet from the peer, received at `arrival`.
    case rtcp(ByteBuffer, arrival: ContinuousClock.Instant)
    /// The session failed (fingerprint mismatch, handshake failure or timeout); nothing more
    /// is sent or received.
    case failed(TransportError)
    /// The peer sent close_notify (RFC 5246 §7.2.1): the call is over.
    case closedByPeer
}

/// Counters of one transport, for metrics and tests.
public struct TransportStatistics: Sendable, Hashable {
    /// SRTP packets protected and sent.
    public var rtpSent = 0
    /// SRTP packets that authenticated and were delivered.
    public var rtpReceived = 0
    /// SRTCP packets protected and sent.
    public var rtcpSent = 0
    /// SRTCP packets that authenticated and were delivered.
    public var rtcpReceived = 0
    /// DTLS datagrams sent (handshake flights, retransmissions, alerts).
    public var dtlsDatagramsSent = 0
    /// DTLS datagrams received.
    public var dtlsDatagramsReceived = 0
    /// Of ``rtpReceived`` and ``rtcpReceived``, the packets handed to the handler of
    /// ``DTLSSRTPTransport/deliverPackets(to:)`` on the thread that received them; the rest
    /// waited in ``DTLSSRTPTransport/events`` for a reader.
    public var packetsHandedOver = 0
    /// SRTP/SRTCP packets dropped because their tag did not verify (RFC 3711 §3.3).
    public var authenticationFailures = 0
    /// SRTP/SRTCP packets dropped as replays (RFC 3711 §3.3.2).
    public var replaysDropped = 0
    /// SRTP/SRTCP packets that arrived before keys existed, or that libsrtp2 refused otherwise.
    public var otherDrops = 0
    /// Datagrams of a kind that has no business on this component (RFC 7983 §7: drop).
    public var unknownDropped = 0
    /// Authenticated RTP/RTCP packets dropped because ``DTLSSRTPTransport/events``' reader was
    /// ``DTLSSRTPTransport/receiveQueueBound`` packets behind (as a full socket buffer drops).
    public var receiveQueueDrops = 0
    /// From the start of the DTLS handshake (ClientHello sent or received) to its completion.
    public var handshakeDuration: Duration?

    /// All counters zero.
    public init() {}
}

extension TransportEvent {
    /// Whether this is a received packet (RTP or RTCP) — the events ``DTLSSRTPTransport/events``
    /// bounds and drops when its reader falls behind; the others are never dropped.
    public var isData: Bool {
        switch self {
        case .rtp, .rtcp: true
        case .connected, .failed, .closedByPeer: false
        }
    }
}
