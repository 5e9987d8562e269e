import RTP
import Codecs
/// The video receive side: frame assembly on top of ``VP8FrameAssembler``, NACK scheduling for the
/// gaps (RFC 4585 §6.2.1) and picture loss indications (RFC 4585 §6.3.1) when a frame is lost for
/// good or the decoder fails.
///
/// Sans-IO: ``insert(_:now:isRetransmission:)`` takes each RTP packet as it arrives and returns the
/// frames it completes, in decoding order; ``poll(now:)`` says which sequence numbers to NACK and
/// whether to send a PLI, and should be called whenever a packet arrived or ``nextDeadline`` passed.
///
/// Policy: a gap first waits out the reorder window, then is NACKed about once per RTT up to the
/// retry limit. A gap that is given up on, a decoder error, or a stream that has shown no keyframe
/// for ``Configuration/keyframeWaitTimeout`` leads to a PLI, repeated at most once per
/// ``Configuration/pliInterval`` (or RTT, if longer) until a keyframe arrives; meanwhile frames
/// that depend on the lost state are not handed out.
public struct VideoJitterBuffer: Sendable {
    /// Timing and limits.
    public struct Configuration: Sendable {
        /// NACK timing and retry limits.
        public var nack: NACKScheduler.Configuration
        /// The shortest interval between two PLIs.
        public var pliInterval: Duration
        /// How long a stream may go without a decodable keyframe (at the start, or after a gap) before a PLI.
        public var keyframeWaitTimeout: Duration
        /// Packets the assembler holds at most.
        public var capacity: Int

        /// Creates a configuration with WebRTC-like defaults.
        public init(nack: NACKScheduler.Configuration = .init(), pliInterval: Duration = .milliseconds(300),
                    keyframeWaitTimeout: Duration = .milliseconds(500), capacity: Int = 2048) {
            self.nack = nack
            self.pliInterval = pliInterval
            self.keyframeWaitTimeout = keyframeWaitTimeout
            self.capacity = capacity
        }
    }

    /// What the caller should send now.
    public struct Feedback: Hashable, Sendable {
        /// Sequence numbers to put in a generic NACK (RFC 4585 §6.2.1); empty for none.
        public var nack: [UInt16]
        /// Whether to send a PLI (RFC 4585 §6.3.1).
        public var pictureLossIndication: Bool

        /// Whether there is anything to send.
        public var isEmpty: Bool { nack.isEmpty && !pictureLossIndication }
    }

    /// Counters for statistics.
    public struct Counters: Hashable, Sendable {
        /// RTP packets inserted, retransmissions included.
        public var packets = 0
        /// Retransmitted packets inserted.
        public var retransmissions = 0
        /// Frames handed out.
        public var frames = 0
        /// Keyframes handed out.
        public var keyframes = 0
        /// Sequence numbers requested by NACK (each request counts).
        public var nackRequests = 0
        /// Packets that arrived after a NACK asked for them.
        public var recoveredByNACK = 0
        /// Packets given up on after the retry limit.
        public var lostForGood = 0
        /// PLIs sent.
        public var pictureLossIndications = 0
        /// Frames withheld because they referenced lost state.
        public var framesDropped = 0
        /// Packets whose payload descriptor was malformed.
        public var malformedPackets = 0
    }

    /// The settings in force.
    public let configuration: Configuration
    private var assembler: VP8FrameAssembler
    private var scheduler: NACKScheduler
    private var awaitingKeyframe = false
    private var pliPending = false
    private var lastPLI: Duration?
    private var lastProgress: Duration?
    /// Counters so far.
    public private(set) var counters = Counters()

    /// Creates an empty buffer.
    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        self.assembler = VP8FrameAssembler(capacity: configuration.capacity)
        self.scheduler = NACKScheduler(configuration: configuration.nack)
    }

    /// The round-trip time that paces NACK retries and PLIs (from RTCP LSR/DLSR, RFC 3550 §6.4.1).
    public var roundTripTime: Duration {
        get { scheduler.roundTripTime }
        set { scheduler.roundTripTime = newValue }
    }

    /// Whether the decoder is waiting for a keyframe (after a lost frame or a decode failure).
    public var isAwaitingKeyframe: Bool { awaitingKeyframe || assembler.needsKeyframe }

    /// Adds a packet received at `now` and returns the frames it completes, in order.
    ///
    /// `isRetransmission` marks a packet that came back in answer to a NACK (for instance unwrapped
    /// from RTX with ``RTXPacket/unwrap(_:originalPayloadType:originalSSRC:)``).
    public mutating func insert(_ packet: RTPPacket, now: Duration, isRetransmission: Bool = false) -> [VP8FrameAssembler.Frame] {
        counters.packets += 1
        if isRetransmission { counters.retransmissions += 1 }
        if lastProgress == nil { lastProgress = now }
        if scheduler.received(packet.sequenceNumber) { counters.recoveredByNACK += 1 }
        let completed: [VP8FrameAssembler.Frame]
        do {
            completed = try assembler.insert(packet)
        } catch {
            counters.malformedPackets += 1
            return []
        }
        var frames: [VP8FrameAssembler.Frame] = []
        for frame in completed {
            if frame.isKeyframe {
                awaitingKeyframe = false
                pliPending = false
            }
            if awaitingKeyframe || (frame.followsGap && !frame.isKeyframe) {
                counters.framesDropped += 1
                continue
            }
            counters.frames += 1
            if frame.isKeyframe { counters.keyframes += 1 }
            frames.append(frame)
        }
        if !completed.isEmpty { lastProgress = now }
        scheduler.update(missing: assembler.missingSequenceNumbers, now: now)
        return frames
    }

    /// Tells the buffer that the decoder failed on a frame or reported it corrupted: a PLI follows
    /// and frames are withheld until a keyframe.
    public mutating func decodingFailed() {
        awaitingKeyframe = true
        pliPending = true
    }

    /// What to send at `now`: the NACKs that are due and whether a PLI is.
    public mutating func poll(now: Duration) -> Feedback {
        let due = scheduler.due(now: now)
        counters.nackRequests += due.nack.count
        if !due.expired.isEmpty {
            counters.lostForGood += due.expired.count
            awaitingKeyframe = true
            pliPending = true
        }
        if assembler.needsKeyframe, let lastProgress, now - lastProgress >= configuration.keyframeWaitTimeout {
            pliPending = true
        }
        if awaitingKeyframe, let lastPLI, now - lastPLI >= max(configuration.keyframeWaitTimeout, roundTripTime * 2) {
            // The keyframe asked for did not come (the PLI or the keyframe itself was lost): ask again.
            pliPending = true
        }
        var pli = false
        if pliPending, lastPLI.map({ now - $0 >= max(configuration.pliInterval, roundTripTime) }) ?? true {
            pli = true
            pliPending = false
            lastPLI = now
            lastProgress = now
            counters.pictureLossIndications += 1
        }
        return Feedback(nack: due.nack, pictureLossIndication: pli)
    }

    /// The earliest time ``poll(now:)`` has something new to say, for a caller that sets a timer.
    public var nextDeadline: Duration? {
        var deadlines: [Duration] = []
        if let nack = scheduler.nextDeadline { deadlines.append(nack) }
        if pliPending, let lastPLI { deadlines.append(lastPLI + max(configuration.pliInterval, roundTripTime)) }
        if isAwaitingKeyframe, let lastProgress { deadlines.append(lastProgress + configuration.keyframeWaitTimeout) }
        return deadlines.min()
    }
}
