import NIOCore
import RTP
import Codecs

/// The audio receive side: a playout buffer for Opus RTP packets (RFC 7587) that hides loss with
/// in-band FEC from the following packet (RFC 6716 §2.1.7) or, when that is not there either, with
/// libopus packet loss concealment (RFC 6716 §4.4).
///
/// Sans-IO: ``insert(_:)`` takes packets as they arrive, in any order; the audio device's clock calls
/// ``nextFrame()`` once per frame (20 ms) and gets PCM to play. Playout starts once
/// ``Configuration/targetDelayFrames`` frames are buffered, which absorbs that much jitter; packets
/// that come after their turn are counted as late and dropped.
///
/// Not `Sendable`: it owns a decoder, which belongs to one task.
public final class AudioPlayoutBuffer {
    /// Buffering settings.
    public struct Configuration: Sendable {
        /// Frames buffered before playout starts (and restarts after the buffer ran dry).
        public var targetDelayFrames: Int
        /// Frames buffered at most; beyond that the oldest are dropped to keep latency bounded.
        public var capacityFrames: Int
        /// Samples per channel of one frame (960 = 20 ms at 48 kHz).
        public var samplesPerFrame: Int

        /// Creates settings: 60 ms of jitter absorption by default.
        public init(targetDelayFrames: Int = 3, capacityFrames: Int = 50, samplesPerFrame: Int = OpusAudioEncoder.frameSize) {
            self.targetDelayFrames = targetDelayFrames
            self.capacityFrames = capacityFrames
            self.samplesPerFrame = samplesPerFrame
        }
    }

    /// How a played frame was produced.
    public enum FrameSource: Hashable, Sendable {
        /// Decoded from its own packet.
        case decoded
        /// Recovered from the FEC data in the next packet.
        case forwardErrorCorrection
        /// Synthesized by packet loss concealment.
        case concealed
        /// Silence while buffering (before the first packet, or after the buffer ran dry).
        case silence
    }

    /// One frame of PCM to play.
    public struct Frame: Hashable, Sendable {
        /// Interleaved samples, ``Configuration/samplesPerFrame`` per channel.
        public var pcm: [Int16]
        /// How it was produced.
        public var source: FrameSource
        /// The RTP sequence number this frame stands for; `nil` for buffering silence.
        public var sequenceNumber: UInt16?
        /// The Opus packet decoded for this frame (`.decoded` only), for recording without re-encoding.
        public var packet: ByteBuffer?
    }

    /// Counters for statistics.
    public struct Counters: Hashable, Sendable {
        /// Packets inserted.
        public var packets = 0
        /// Frames decoded from their own packet.
        public var decoded = 0
        /// Frames decoded from the next packet's FEC (libopus conceals when that packet has none).
        public var recoveredByFEC = 0
        /// Frames synthesized by packet loss concealment.
        public var concealed = 0
        /// Frames of buffering silence.
        public var silence = 0
        /// Packets that arrived after their turn and were dropped.
        public var late = 0
        /// Packets received twice.
        public var duplicates = 0
        /// Packets libopus rejected (their frames were concealed).
        public var decodeErrors = 0
    }

    /// The settings in force.
    public let configuration: Configuration
    private let decoder: OpusAudioDecoder
    private var packets: [Int64: ByteBuffer] = [:]
    private var highest: Int64?
    private var nextToPlay: Int64?
    private var playing = false
    /// Counters so far.
    public private(set) var counters = Counters()

    /// Creates a buffer that decodes `channels` channels.
    ///
    /// - Throws: ``CodecError`` when the Opus decoder cannot be created or the settings are out of range.
    public init(channels: Int = 1, configuration: Configuration = Configuration()) throws {
        guard configuration.targetDelayFrames >= 1, configuration.capacityFrames > configuration.targetDelayFrames else {
            throw MediaError(.invalidArgument, "playout buffer needs 1 ≤ target delay (\(configuration.targetDelayFrames)) < capacity (\(configuration.capacityFrames)) frames")
        }
        self.decoder = try OpusAudioDecoder(channels: channels)
        self.configuration = configuration
    }

    /// Frames buffered ahead of playout.
    public var bufferedFrames: Int {
        guard let highest else { return 0 }
        return Int(highest - (nextToPlay ?? packets.keys.min() ?? highest) + 1)
    }

    /// Adds a received packet.
    public func insert(_ packet: RTPPacket) {
        counters.packets += 1
        let sequence = unwrap(packet.sequenceNumber)
        if let nextToPlay, sequence < nextToPlay {
            counters.late += 1
            return
        }
        guard packets[sequence] == nil else {
            counters.duplicates += 1
            return
        }
        packets[sequence] = packet.payload
        if nextToPlay == nil { nextToPlay = packets.keys.min() }
        // Keep latency bounded: a burst far ahead moves playout forward.
        if let highest, let next = nextToPlay, highest - next >= Int64(configuration.capacityFrames) {
            let newStart = highest - Int64(configuration.capacityFrames) + 1
            for key in packets.keys where key < newStart { packets[key] = nil }
            nextToPlay = newStart
        }
    }

    /// The next frame to play: call once per frame duration.
    public func nextFrame() -> Frame {
        let silence = [Int16](repeating: 0, count: configuration.samplesPerFrame * decoder.channels)
        guard let next = nextToPlay, let highest else {
            counters.silence += 1
            return Frame(pcm: silence, source: .silence, sequenceNumber: nil)
        }
        if !playing {
            guard highest - next + 1 >= Int64(configuration.targetDelayFrames) else {
                counters.silence += 1
                return Frame(pcm: silence, source: .silence, sequenceNumber: nil)
            }
            playing = true
        }
        nextToPlay = next + 1
        let sequenceNumber = UInt16(truncatingIfNeeded: next)
        if let payload = packets.removeValue(forKey: next) {
            do {
                let pcm = try decoder.decode(payload)
                counters.decoded += 1
                return Frame(pcm: pcm, source: .decoded, sequenceNumber: sequenceNumber, packet: payload)
            } catch {
                counters.decodeErrors += 1
            }
        } else if let following = packets[next + 1] {
            // RFC 6716 §2.1.7: the next packet carries a low-bitrate copy of this frame.
            if let pcm = try? decoder.decodeFEC(from: following, samplesPerChannel: configuration.samplesPerFrame) {
                counters.recoveredByFEC += 1
                return Frame(pcm: pcm, source: .forwardErrorCorrection, sequenceNumber: sequenceNumber)
            }
        }
        if next > highest {
            // The buffer ran dry: conceal this frame, and rebuffer before playing on.
            playing = false
        }
        let pcm = (try? decoder.concealLoss(samplesPerChannel: configuration.samplesPerFrame)) ?? silence
        counters.concealed += 1
        return Frame(pcm: pcm, source: .concealed, sequenceNumber: sequenceNumber)
    }

    private func unwrap(_ sequence: UInt16) -> Int64 {
        guard let highest else {
            let value = Int64(sequence) + (1 << 32)
            highest = value
            return value
        }
        let value = highest + Int64(Int16(bitPattern: sequence &- UInt16(truncatingIfNeeded: highest)))
        if value > highest { self.highest = value }
        return value
    }
}
