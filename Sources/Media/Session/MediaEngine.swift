import Foundation
import NIOCore
import RTP
import Synchronization
import Codecs

/// The media of one live call: sources → Opus/VP8 → RTP out, RTP/RTCP in → jitter and playout
/// buffers → decoders → optional files, with RTCP reports, NACK/PLI, transport-wide congestion
/// control feedback and the rate controller in between. The session itself is
/// ``MediaSessionCore``, the same one ``MediaLoop`` runs over simulated links; this class gives it
/// a thread, the wall clock and a recording.
///
/// The codecs and buffers are not thread-safe, so they all live on one dedicated thread (not the
/// Swift concurrency pool: a VP8 encode takes milliseconds and would starve it on a small
/// machine). Packets are handed in from any thread; the engine hands packets out through `send`.
/// Times are wall-clock (Unix epoch), so a receiver on the same host reads the latency from the
/// send time drawn into the test pattern.
public final class MediaEngine: Sendable {
    /// What to send and how.
    public struct Configuration: Sendable {
        /// The negotiated streams; a kind that is absent is neither sent nor received.
        public var streams: [NegotiatedStream]
        public var video: VideoSourceSpec?
        public var audio: AudioSourceSpec?
        /// The VP8 bitrate to start with and the range the rate controller keeps to.
        public var videoBitrateKbps: Int
        public var maximumBitrateKbps: Int
        public var audioBitrate: Int
        /// Where to record what arrives (`video.ivf`, `audio.wav`); `nil` records nothing.
        public var recordDirectory: String?
        /// File name prefix of the recordings.
        public var recordPrefix: String
        /// This side's SSRCs (the ones its SDP announced).
        public var audioSSRC: UInt32
        public var videoSSRC: UInt32
        public var rtxSSRC: UInt32
        /// RTCP CNAME (RFC 7022).
        public var cname: String
        /// Whether the rate controller sets the encoders' bitrates; `false` keeps the configured
        /// ones (the estimate is still made and reported).
        public var adaptsBitrate: Bool
        /// How the video receiver waits for, asks for and gives up on lost packets.
        public var jitterBuffer: VideoJitterBuffer.Configuration
        /// The SSRCs of the simulcast layers, lowest first, used when the negotiated video stream
        /// sends simulcast (``NegotiatedStream/simulcastRIDs``); `videoSSRC` is then unused.
        public var simulcastSSRCs: [(ssrc: UInt32, retransmissionSSRC: UInt32)] = []

        public init(streams: [NegotiatedStream], video: VideoSourceSpec?, audio: AudioSourceSpec?, videoBitrateKbps: Int = 800,
                    maximumBitrateKbps: Int = 2_500, audioBitrate: Int = 32_000, recordDirectory: String? = nil, recordPrefix: String = "",
                    audioSSRC: UInt32, videoSSRC: UInt32, rtxSSRC: UInt32, cname: String, adaptsBitrate: Bool = true,
                    jitterBuffer: VideoJitterBuffer.Configuration = .init()) {
            self.streams = streams
            self.video = video
            self.audio = audio
            self.videoBitrateKbps = videoBitrateKbps
            self.maximumBitrateKbps = maximumBitrateKbps
            self.audioBitrate = audioBitrate
            self.recordDirectory = recordDirectory
            self.recordPrefix = recordPrefix
            self.audioSSRC = audioSSRC
            self.videoSSRC = videoSSRC
            self.rtxSSRC = rtxSSRC
            self.cname = cname
            self.adaptsBitrate = adaptsBitrate
            self.jitterBuffer = jitterBuffer
        }
    }

    /// One RTP packet or compound RTCP packet in the clear, on its way to the transport that
    /// protects and sends it, or from the transport that received and unprotected it.
    public enum Packet: Sendable {
        case rtp(ByteBuffer)
        case rtcp(ByteBuffer)
    }

    struct Inbound {
        /// What arrived: as received, or an RTP packet its caller parsed already.
        enum Content {
            case packet(Packet)
            case parsedRTP(RTPPacket, size: Int)
        }
        var content: Content
        var arrival: Duration
    }

    public let configuration: Configuration
    private let send: @Sendable (Packet) -> Void
    let inbound = Mutex<[Inbound]>([])
    private let wake = DispatchSemaphore(value: 0)
    private let stopping = Atomic<Bool>(false)
    private let keyframeWanted = Atomic<Bool>(false)
    private let addedStreams = Mutex<[NegotiatedStream]>([])
    private let snapshot = Mutex(MediaSessionStatistics())
    private let inboundDropped = Atomic<Int>(0)
    private let done = Mutex<(finished: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    /// Creates the engine; nothing runs until ``start()``.
    public init(configuration: Configuration, send: @escaping @Sendable (Packet) -> Void) {
        self.configuration = configuration
        self.send = send
    }

    /// Opens the sources, codecs and files and starts the media thread.
    ///
    /// - Throws: ``CodecError`` or ``MediaError`` when a source, codec or file cannot be opened.
    public func start() throws {
        let opened = Mutex<Result<Void, any Error>?>(nil)
        let ready = DispatchSemaphore(value: 0)
        let thread = Thread { [self] in
            let core: MediaSessionCore
            do {
                core = try openSession()
                opened.withLock { $0 = .success(()) }
                ready.signal()
            } catch {
                opened.withLock { $0 = .failure(error) }
                ready.signal()
                finish()
                return
            }
            run(core)
            finish()
        }
        thread.name = "meshnode-media"
        thread.stackSize = 4 << 20
        thread.start()
        ready.wait()
        if case .failure(let error) = opened.withLock({ $0 }) { throw error }
    }

    /// Hands in a decrypted RTP packet that came off the socket at `arrival` (its transport's
    /// stamp, `TransportEvent.rtp`): the transport-cc feedback, jitter and playout take that
    /// time, not when the packet got here. Any thread.
    public func receive(rtp packet: ByteBuffer, arrival: ContinuousClock.Instant = .now) {
        enqueue(Inbound(content: .packet(.rtp(packet)), arrival: Self.engineTime(of: arrival)))
    }

    /// Hands in a decrypted RTP packet its caller parsed already (a forwarded call reads the
    /// transport-wide sequence number of every packet first), with its size as received, so
    /// the media thread does not parse it again. Any thread.
    public func receive(rtp packet: RTPPacket, size: Int, arrival: ContinuousClock.Instant = .now) {
        enqueue(Inbound(content: .parsedRTP(packet, size: size), arrival: Self.engineTime(of: arrival)))
    }

    /// Hands in a decrypted (compound) RTCP packet that came off the socket at `arrival`. Any thread.
    public func receive(rtcp packet: ByteBuffer, arrival: ContinuousClock.Instant = .now) {
        enqueue(Inbound(content: .packet(.rtcp(packet)), arrival: Self.engineTime(of: arrival)))
    }

    /// `instant` on the engine's clock (``now()``, the wall clock its recordings and reports use):
    /// now there, less how long ago `instant` was.
    static func engineTime(of instant: ContinuousClock.Instant) -> Duration {
        let engineNow = now()
        let ago = ContinuousClock.now - instant
        return ago > .zero ? engineNow - ago : engineNow
    }

    /// Asks the video encoder for a keyframe (after an ICE restart, say).
    public func requestKeyframe() {
        keyframeWanted.store(true, ordering: .relaxed)
        wake.signal()
    }

    /// Starts receiving a stream a renegotiation added (a video stream in an audio call, for a
    /// screen share). Any thread; the media thread takes it before the next packet it handles.
    public func startReceiving(_ stream: NegotiatedStream) {
        addedStreams.withLock { $0.append(stream) }
        wake.signal()
    }

    /// The statistics now (refreshed a few times a second).
    public var statistics: MediaSessionStatistics {
        var statistics = snapshot.withLock { $0 }
        statistics.inboundQueueDrops = inboundDropped.load(ordering: .relaxed)
        return statistics
    }

    /// Stops the thread, closes the files and returns the final statistics. Idempotent.
    public func stop() async -> MediaSessionStatistics {
        stopping.store(true, ordering: .relaxed)
        wake.signal()
        await withCheckedContinuation { continuation in
            let finished = done.withLock { state -> Bool in
                if state.finished { return true }
                state.waiters.append(continuation)
                return false
            }
            if finished { continuation.resume() }
        }
        return statistics
    }

    /// The session with the configured recording, on the wall clock, sending through `send`.
    private func openSession() throws -> MediaSessionCore {
        var recorder: MediaRecorder?
        if let directory = configuration.recordDirectory {
            let receivesAudio = configuration.streams.first { $0.kind == "audio" }?.receives == true
            recorder = try MediaRecorder(directory: directory, prefix: configuration.recordPrefix, audio: receivesAudio)
        }
        var random = SystemRandomNumberGenerator()
        return try MediaSessionCore(configuration: configuration, clock: Self.now, sink: recorder, random: &random, send: send)
    }

    /// The media thread: hands the packets that arrived to the session, lets it do what is due,
    /// publishes its statistics a few times a second and sleeps until the next thing is due.
    private func run(_ core: MediaSessionCore) {
        var nextSnapshot = Self.now() + .milliseconds(250)
        while !stopping.load(ordering: .relaxed) {
            let now = Self.now()
            for stream in addedStreams.withLock({ added in defer { added = [] }; return added }) { core.startReceiving(stream) }
            let arrived = inbound.withLock { queue in
                defer { queue.removeAll(keepingCapacity: true) }
                return queue
            }
            for inbound in arrived {
                switch inbound.content {
                case .packet(let packet): core.receive(packet, arrival: inbound.arrival)
                case .parsedRTP(let packet, let size): core.receive(parsed: packet, size: size, arrival: inbound.arrival)
                }
            }
            if keyframeWanted.exchange(false, ordering: .relaxed) { core.requestKeyframe() }
            // At least every 10 ms: NACKs and PLIs fall due between frames.
            let deadline = min(core.advance(now: now), now + .milliseconds(10))
            if now >= nextSnapshot {
                snapshot.withLock { $0 = core.statistics(now: now) }
                nextSnapshot = now + .milliseconds(250)
            }
            let wait = deadline - Self.now()
            if wait > .zero { _ = wake.wait(timeout: .now() + .microseconds(Int(wait.seconds * 1_000_000))) }
        }
        core.close()
        snapshot.withLock { $0 = core.statistics(now: Self.now()) }
    }

    /// Most packets waiting for the media thread: about 4 s of a 720p stream. A peer that sends
    /// faster than the thread drains loses the excess instead of growing the queue without end.
    static let inboundLimit = 4_096

    private func enqueue(_ packet: Inbound) {
        let count = inbound.withLock { queue -> Int in
            guard queue.count < Self.inboundLimit else { return 0 }
            queue.append(packet)
            return queue.count
        }
        if count == 0 { inboundDropped.add(1, ordering: .relaxed) }
        // One wake-up per batch: the thread drains the whole queue.
        if count == 1 { wake.signal() }
    }

    private func finish() {
        let waiters = done.withLock { state in
            state.finished = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Wall-clock time since the Unix epoch.
    static func now() -> Duration {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return .seconds(spec.tv_sec) + .nanoseconds(spec.tv_nsec)
    }
}
