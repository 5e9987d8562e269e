/// Bounds and timings of one forwarded call (docs/rooms.md "Bounds").
///
/// Every table the forwarder keys by what participants send has a bound here: participants,
/// streams per participant, the packet cache per stream, the NACKs and retransmissions one
/// receiver can cause.
public struct ForwardingConfiguration: Hashable, Sendable {
    /// Participants of one forwarded call at most.
    public var maxParticipants: Int
    /// Streams (audio, video, screen) one participant may send at most: its first offer's two
    /// and the three its later offers may add (a screen share, docs/rooms.md "Added streams").
    public var maxSourcesPerParticipant: Int
    /// Packets of each video stream kept to answer NACKs (a power of two).
    public var videoCacheCapacity: Int
    /// Packets of each audio stream kept (a power of two); audio is rarely NACKed, so few.
    public var audioCacheCapacity: Int
    /// How long a cached packet may still be sent again: past it a retransmission arrives too late to play.
    public var cacheMaxAge: Duration
    /// The shortest time between two key-frame requests (PLI/FIR) passed to one source: many
    /// receivers that lose the same picture cost the sender one key frame (RFC 4585 §3.5.1 leaves the
    /// rate to the application).
    public var minKeyFrameRequestInterval: Duration
    /// Sequence numbers of one NACK packet that are looked at; the rest are ignored.
    public var maxSequencesPerNACK: Int
    /// Retransmissions one receiver may cause per second (a token bucket of one second's depth):
    /// a receiver that NACKs the same packets over and over cannot make the forwarder a traffic amplifier.
    public var maxRetransmissionsPerSecond: Int
    /// RFC 6464 levels at or below this (−dBov; 0 is loudest, 127 silence) count as speaking.
    public var speakingLevel: UInt8
    /// How long a participant counts as speaking after its last loud packet.
    public var speakingHold: Duration
    /// The SSRC the forwarder puts as the sender of the feedback it sends to sources (RFC 4585 §6.1).
    public var feedbackSSRC: UInt32
    /// Each receiver's bandwidth estimate starts here and stays within the range (bits per second):
    /// it picks the simulcast layers the receiver gets (docs/rooms.md "Simulcast").
    public var receiverStartBitrate: Double = 2_000_000
    public var receiverBitrateRange: ClosedRange<Double> = 50_000...20_000_000
    /// How long the estimate must allow a higher layer before the forwarder switches up; down is at once.
    public var layerUpHold: Duration = .seconds(1)
    /// How often each receiver's layers are chosen again.
    public var layerChoiceInterval: Duration = .milliseconds(100)
    /// Voices a receiver gets whatever its estimate: the most recent speakers (docs/rooms.md
    /// "A squeezed receiver"). Below this the call would not be a call.
    public var minimumVoices: Int = 1

    /// Creates a configuration; the defaults fit a room of 20 with 720p video.
    public init(
        maxParticipants: Int = 20, maxSourcesPerParticipant: Int = 5, videoCacheCapacity: Int = 512, audioCacheCapacity: Int = 64,
        cacheMaxAge: Duration = .seconds(1), minKeyFrameRequestInterval: Duration = .milliseconds(500), maxSequencesPerNACK: Int = 64,
        maxRetransmissionsPerSecond: Int = 400, speakingLevel: UInt8 = 50, speakingHold: Duration = .milliseconds(600), feedbackSSRC: UInt32 = 1
    ) {
        self.maxParticipants = maxParticipants
        self.maxSourcesPerParticipant = maxSourcesPerParticipant
        self.videoCacheCapacity = videoCacheCapacity
        self.audioCacheCapacity = audioCacheCapacity
        self.cacheMaxAge = cacheMaxAge
        self.minKeyFrameRequestInterval = minKeyFrameRequestInterval
        self.maxSequencesPerNACK = maxSequencesPerNACK
        self.maxRetransmissionsPerSecond = maxRetransmissionsPerSecond
        self.speakingLevel = speakingLevel
        self.speakingHold = speakingHold
        self.feedbackSSRC = feedbackSSRC
    }
}
