import Foundation

/// Synthetic audio: a sum of sine tones at 48 kHz in 20 ms frames, for tests and the media loop.
///
/// Each channel may have its own tones, so a listener (or a test) can tell left from right.
public struct ToneAudioSource: Sendable {
    /// One sine tone.
    public struct Tone: Hashable, Sendable {
        /// Frequency in hertz.
        public var frequency: Double
        /// Peak amplitude, 0–1 of full scale.
        public var amplitude: Double

        /// Creates a tone.
        public init(frequency: Double, amplitude: Double = 0.3) {
            self.frequency = frequency
            self.amplitude = amplitude
        }
    }

    /// Samples per second.
    public static let sampleRate = OpusAudioEncoder.sampleRate
    /// The tones of each channel.
    public let channels: [[Tone]]
    /// Samples per channel in one frame.
    public let samplesPerFrame: Int
    private var position: Int = 0

    /// Creates a source with the given tones per channel (one array for mono, two for stereo).
    ///
    /// - Throws: ``CodecError`` `.invalidArgument` for no channel, more than two, or a tone above Nyquist.
    public init(channels: [[Tone]] = [[Tone(frequency: 440)]], samplesPerFrame: Int = OpusAudioEncoder.frameSize) throws(CodecError) {
        guard (1...2).contains(channels.count) else {
            throw CodecError(.invalidArgument, "tone source has 1 or 2 channels, got \(channels.count)")
        }
        guard channels.allSatisfy({ $0.allSatisfy { $0.frequency > 0 && $0.frequency < Double(Self.sampleRate) / 2 } }) else {
            throw CodecError(.invalidArgument, "tone frequencies must be between 0 and 24000 Hz")
        }
        guard samplesPerFrame > 0 else {
            throw CodecError(.invalidArgument, "frame size must be positive, got \(samplesPerFrame)")
        }
        self.channels = channels
        self.samplesPerFrame = samplesPerFrame
    }

    /// The next frame: ``samplesPerFrame`` samples per channel, interleaved.
    public mutating func nextFrame() -> [Int16] {
        var pcm = [Int16](repeating: 0, count: samplesPerFrame * channels.count)
        for index in 0..<samplesPerFrame {
            let t = Double(position + index) / Double(Self.sampleRate)
            for (channel, tones) in channels.enumerated() {
                var sample = 0.0
                for tone in tones { sample += tone.amplitude * sin(2 * Double.pi * tone.frequency * t) }
                pcm[index * channels.count + channel] = Int16(max(-32767, min(32767, sample * 32767)))
            }
        }
        position += samplesPerFrame
        return pcm
    }
}
