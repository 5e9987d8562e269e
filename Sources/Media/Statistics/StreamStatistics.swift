/// What happened to one received stream, as `meshnode media-loop --json` prints it and a test
/// checks it: counts of packets, frames and losses, how loss was repaired, RFC 3550 jitter, the
/// bitrate, decoder errors, and for the test pattern the frame numbers read back from the pictures.
public struct StreamStatistics: Hashable, Sendable, Codable {
    /// "video" or "audio".
    public var kind: String
    /// The codec, "VP8" or "opus".
    public var codec: String
    /// RTP packets received, retransmissions included.
    public var packets = 0
    /// Payload bytes received.
    public var bytes = 0
    /// Frames handed to the decoder.
    public var frames = 0
    /// Keyframes among them (video).
    public var keyframes = 0
    /// Packets the network lost (sequence numbers that did not arrive the first time).
    public var lost = 0
    /// Packets recovered by retransmission after a NACK (RFC 4585 §6.2.1).
    public var recoveredByNACK = 0
    /// Sequence numbers requested by NACK, each request counted.
    public var nackRequests = 0
    /// Packets given up on after the retry limit.
    public var lostForGood = 0
    /// PLIs sent (RFC 4585 §6.3.1).
    public var pictureLossIndications = 0
    /// Audio frames recovered from in-band FEC (RFC 6716 §2.1.7).
    public var recoveredByFEC = 0
    /// Audio frames concealed (RFC 6716 §4.4).
    public var concealed = 0
    /// Frames the decoder rejected or reported corrupted.
    public var decodeErrors = 0
    /// Interarrival jitter (RFC 3550 §6.4.1, §A.8) in milliseconds.
    public var jitterMilliseconds = 0.0
    /// Average received bitrate in kilobits per second over the stream's life.
    public var bitrateKbps = 0.0
    /// Test-pattern frame numbers read back from decoded pictures, in display order.
    public var patternFrameNumbers: [Int] = []
    /// Decoded pictures whose test-pattern code failed its CRC.
    public var patternUnreadable = 0
    /// Mean latency from the send time drawn into the picture to display, in milliseconds.
    public var meanLatencyMilliseconds = 0.0

    /// Creates empty statistics.
    public init(kind: String, codec: String) {
        self.kind = kind
        self.codec = codec
    }

    /// Frame numbers skipped between consecutive pictures read back (0 when the sequence is continuous).
    public var patternGaps: Int {
        zip(patternFrameNumbers, patternFrameNumbers.dropFirst()).reduce(0) { $0 + max(0, $1.1 - $1.0 - 1) }
    }

    /// Whether the numbers read back only ever go up.
    public var patternInOrder: Bool {
        zip(patternFrameNumbers, patternFrameNumbers.dropFirst()).allSatisfy { $0 < $1 }
    }
}
