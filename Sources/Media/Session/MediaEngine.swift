import Foundation
import NIOCore
import Synchronization
import Codecs

/// The media of one live call: sources → Opus/VP8 → RTP out, RTP/RTCP in → jitter and playout
/// buffers → decoders → optional files, with RTCP reports, NACK/PLI, transport-wide congestion
/// control feedback and the rate controller in between — ``MediaLoop``'s pipeline on a real
/// transport and the wall clock.
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

        public init(streams: [NegotiatedStream], video: VideoSourceSpec?, audio: AudioSourceSpec?, videoBitrateKbps: Int = 800,
                    maximumBitrateKbps: Int = 2_500, audioBitrate: Int = 32_000, recordDirectory: String? = nil, recordPrefix: String = "",
                    audioSSRC: UInt32, videoSSRC: UInt32, rtxSSRC: UInt32, cname: String) {
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
        }
    }

    /// A packet for the transport to protect and send.
    public enum Outgoing: Sendable {
        case rtp(ByteBuffer)
        case rtcp(ByteBuffer)
    }

    struct Inbound {
        var bytes: ByteBuffer
        var isRTCP: Bool
        var arrival: Duration
    }

    public let configuration: Configuration
    let send: @Sendable (Outgoing) -> Void
    let inbound = Mutex<[Inbound]>([])
    let wake = DispatchSemaphore(value: 0)
    let stopping = Atomic<Bool>(false)
    let keyframeWanted = Atomic<Bool>(false)
    let snapshot = Mutex(MediaSessionStatistics())
    private let done = Mutex<(finished: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    /// Creates the engine; nothing runs until ``start()``.
    public init(configuration: Configuration, send: @escaping @Sendable (Outgoing) -> Void) {
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
                core = try MediaSessionCore(engine: self)
                opened.withLock { $0 = .success(()) }
                ready.signal()
            } catch {
                opened.withLock { $0 = .failure(error) }
                ready.signal()
                finish()
                return
            }
            core.run()
            finish()
        }
        thread.name = "meshnode-media"
        thread.stackSize = 4 << 20
        thread.start()
        ready.wait()
        if case .failure(let error) = opened.withLock({ $0 }) { throw error }
    }

    /// Hands in a decrypted RTP packet. Any thread.
    public func receive(rtp packet: ByteBuffer) {
        enqueue(Inbound(bytes: packet, isRTCP: false, arrival: Self.now()))
    }

    /// Hands in a decrypted (compound) RTCP packet. Any thread.
    public func receive(rtcp packet: ByteBuffer) {
        enqueue(Inbound(bytes: packet, isRTCP: true, arrival: Self.now()))
    }

    /// Asks the video encoder for a keyframe (after an ICE restart, say).
    public func requestKeyframe() {
        keyframeWanted.store(true, ordering: .relaxed)
        wake.signal()
    }

    /// The statistics now (refreshed a few times a second).
    public var statistics: MediaSessionStatistics { snapshot.withLock { $0 } }

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

    private func enqueue(_ packet: Inbound) {
        let count = inbound.withLock { queue -> Int in
            queue.append(packet)
            return queue.count
        }
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
