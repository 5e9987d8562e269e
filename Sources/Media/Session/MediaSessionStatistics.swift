/// A snapshot of a live media session, both directions of each stream: what `meshnode call --json`
/// prints and the live status line shows.
public struct MediaSessionStatistics: Sendable, Codable, Hashable {
    /// One media kind.
    public struct Stream: Sendable, Codable, Hashable {
        public var kind: String
        /// Whether the negotiation lets this side send and receive the stream.
        public var sending = false
        public var receiving = false
        public var sentPackets = 0
        public var sentFrames = 0
        public var sentBytes = 0
        public var keyframesSent = 0
        public var retransmissions = 0
        public var keyframeRequestsReceived = 0
        public var receivedPackets = 0
        /// Video: frames decoded; audio: 20 ms frames decoded or recovered by FEC.
        public var receivedFrames = 0
        public var receivedBytes = 0
        /// Packets the network lost the first time (RFC 3550 cumulative loss).
        public var lost = 0
        /// Video: recovered by NACK retransmission; audio: recovered by FEC.
        public var recovered = 0
        /// Audio frames concealed by PLC.
        public var concealed = 0
        public var pictureLossIndicationsSent = 0
        public var decodeErrors = 0
        public var jitterMilliseconds = 0.0
        /// Received bitrate over the last second, kb/s.
        public var receiveKbps = 0.0
        /// Sent bitrate over the last second, kb/s.
        public var sendKbps = 0.0
        /// Video: the size of the last decoded picture.
        public var width: Int?
        public var height: Int?
        /// Test-pattern frame numbers read back: the first and last, and how many.
        public var firstPatternFrame: Int?
        public var lastPatternFrame: Int?
        public var patternFrames = 0
        /// Mean latency from the send time drawn into the test pattern to decode, ms (one host's clock).
        public var meanLatencyMilliseconds: Double?

        public init(kind: String) { self.kind = kind }
    }

    public var audio: Stream?
    public var video: Stream?
    /// RTT measured from receiver reports echoing our sender reports (RFC 3550 §6.4.1), ms.
    public var roundTripMilliseconds: Double?
    /// The sender's current target bitrate (rate control), kb/s.
    public var targetKbps: Double?
    /// Milliseconds since the session started.
    public var elapsedMilliseconds: Double = 0
    /// Milliseconds from the session's start to the first decoded video frame.
    public var firstVideoFrameMilliseconds: Double?
    /// Files written.
    public var files: [String] = []
    /// What each simulcast layer sent, lowest first; empty without simulcast.
    public var simulcastLayers: [SimulcastLayerStatistics] = []
    /// Packets dropped because the engine's inbound queue was full (``MediaEngine/inboundLimit``
    /// waiting for the media thread).
    public var inboundQueueDrops = 0

    /// One simulcast layer's sending counts.
    public struct SimulcastLayerStatistics: Sendable, Codable, Hashable {
        public var rid: String
        public var frames: Int
        public var keyframes: Int
        public var bytes: Int
    }

    public init() {}

    /// Every negotiated direction of every stream carried media: what this side sends went out,
    /// what it receives was decoded. For a call that is both ways; for a desktop share to a peer
    /// that only watches, the one way negotiated.
    public var mediaFlowedBothWays: Bool {
        let streams = [audio, video].compactMap { $0 }
        let sentAll = streams.allSatisfy { !$0.sending || $0.sentPackets > 0 }
        let receivedAll = streams.allSatisfy { !$0.receiving || $0.receivedFrames > 0 }
        return sentAll && receivedAll && streams.contains { $0.sending || $0.receiving }
    }
}

extension MediaSessionStatistics.Stream {
    /// Fills in the receiving half from the received stream's statistics.
    mutating func setReceived(_ received: StreamStatistics) {
        receivedPackets = received.packets
        receivedBytes = received.bytes
        // A video frame the decoder refused is not shown; an audio frame it refused is concealed.
        receivedFrames = received.frames - (received.kind == "video" ? received.decodeErrors : received.concealed)
        lost = received.lost
        recovered = received.recoveredByNACK + received.recoveredByFEC
        concealed = received.concealed
        pictureLossIndicationsSent = received.pictureLossIndications
        decodeErrors = received.decodeErrors
        jitterMilliseconds = received.jitterMilliseconds
        firstPatternFrame = received.patternFrameNumbers.first
        lastPatternFrame = received.patternFrameNumbers.last
        patternFrames = received.patternFrameNumbers.count
        meanLatencyMilliseconds = received.patternFrameNumbers.isEmpty ? nil : received.meanLatencyMilliseconds
    }
}
