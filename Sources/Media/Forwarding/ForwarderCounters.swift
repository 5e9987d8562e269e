/// What one forwarded call did, for `/metrics` (docs/rooms.md "Metrics"). Monotonic counts.
public struct ForwarderCounters: Hashable, Sendable, Codable {
    /// RTP packets and bytes received from participants (after SRTP; payload and header).
    public var packetsIn = 0
    /// RTP bytes received from participants.
    public var bytesIn = 0
    /// RTP packets sent to participants, retransmissions included.
    public var packetsOut = 0
    /// RTP bytes sent to participants.
    public var bytesOut = 0
    /// Sequence numbers receivers asked for in NACKs.
    public var nackedPackets = 0
    /// Of those, answered from the forwarder's cache.
    public var nacksAnsweredFromCache = 0
    /// Of those, not in the cache and asked of the source.
    public var nacksForwardedToSource = 0
    /// Retransmissions not sent because the receiver's budget was spent.
    public var retransmissionsThrottled = 0
    /// Key-frame requests (PLI and FIR) received from receivers.
    public var keyFrameRequestsReceived = 0
    /// PLIs sent to sources (after coalescing).
    public var plisForwarded = 0
    /// FIRs sent to sources (after coalescing).
    public var firsForwarded = 0
    /// Receiver reports and reception feedback ended at the forwarder (RFC 3550 §7.3: a translator
    /// that changes the stream answers for it).
    public var reportsTerminated = 0
    /// Sender reports translated and passed on.
    public var senderReportsForwarded = 0
    /// Simulcast layer switches made (at a key frame of the new layer), and those down among them.
    public var layerSwitches = 0
    public var layerSwitchesDown = 0
    /// Videos paused for a receiver whose estimate is below the floor, and resumed.
    public var videoPauses = 0
    public var videoResumes = 0
    /// Voices withheld from such a receiver (those who spoke least recently), and given back.
    public var audioWithheld = 0
    public var audioResumed = 0
    /// Packets refused: a stream that is not the sender's, a malformed packet, an unknown payload type.
    public var rejected = 0

    /// Creates zero counts.
    public init() {}
}
