internal import CCodecShims
internal import COpus
import NIOCore

/// An Opus encoder (RFC 6716) at 48 kHz with 20 ms frames, as WebRTC uses it (RFC 7587).
///
/// Not thread-safe: one encoder belongs to one sending stream and is used from one task at a time.
public final class OpusAudioEncoder {
    /// What the encoder is tuned for (libopus `OPUS_APPLICATION_*`).
    public enum Application: Sendable {
        /// Speech, with the most intelligible result at low bitrates.
        case voip
        /// Music and mixed content.
        case audio
        /// The lowest algorithmic delay, CELT only.
        case restrictedLowDelay
    }

    /// Encoder settings.
    public struct Configuration: Sendable {
        /// 1 (mono) or 2 (stereo).
        public var channels: Int
        /// Target bitrate in bits per second, 6000–510000.
        public var bitrate: Int
        /// What the encoder is tuned for.
        public var application: Application
        /// In-band forward error correction (RFC 6716 §2.1.7; `useinbandfec=1` in SDP, RFC 7587 §6.1).
        public var inbandFEC: Bool
        /// The packet loss the FEC should cover, in percent (0–100). FEC is only sent when this is above 0.
        public var expectedPacketLossPercent: Int
        /// Discontinuous transmission: during silence the encoder emits 1–2 byte packets (RFC 7587 §3.1.3; `usedtx=1`).
        public var dtx: Bool
        /// Computational complexity 0–10.
        public var complexity: Int

        /// Creates settings; the defaults are those of a WebRTC voice stream.
        public init(channels: Int = 1, bitrate: Int = 32_000, application: Application = .voip, inbandFEC: Bool = true,
                    expectedPacketLossPercent: Int = 10, dtx: Bool = false, complexity: Int = 10) {
            self.channels = channels
            self.bitrate = bitrate
            self.application = application
            self.inbandFEC = inbandFEC
            self.expectedPacketLossPercent = expectedPacketLossPercent
            self.dtx = dtx
            self.complexity = complexity
        }
    }

    /// The sample rate of the PCM this encoder takes.
    public static let sampleRate = 48_000
    /// Samples per channel in one 20 ms frame.
    public static let frameSize = 960
    /// The largest packet the encoder is allowed to produce (RFC 6716 §3.4, R2 is 1275 per frame).
    static let maxPacketSize = 1500

    /// The settings in force.
    public private(set) var configuration: Configuration
    private let encoder: OpaquePointer

    /// Creates an encoder.
    ///
    /// - Throws: ``CodecError`` `.invalidArgument` for a channel count other than 1 or 2 or a value out
    ///   of range, `.codecFailure` when libopus refuses the configuration.
    public init(_ configuration: Configuration = Configuration()) throws(CodecError) {
        guard configuration.channels == 1 || configuration.channels == 2 else {
            throw CodecError(.invalidArgument, "Opus channels must be 1 or 2, got \(configuration.channels)")
        }
        guard (0...10).contains(configuration.complexity) else {
            throw CodecError(.invalidArgument, "Opus complexity is 0–10, got \(configuration.complexity)")
        }
        let application: Int32 = switch configuration.application {
        case .voip: OPUS_APPLICATION_VOIP
        case .audio: OPUS_APPLICATION_AUDIO
        case .restrictedLowDelay: OPUS_APPLICATION_RESTRICTED_LOWDELAY
        }
        var error: Int32 = 0
        guard let encoder = opus_encoder_create(Int32(Self.sampleRate), Int32(configuration.channels), application, &error), error == OPUS_OK else {
            throw CodecError(.codecFailure, "opus_encoder_create failed: \(Self.describe(error))")
        }
        self.encoder = encoder
        self.configuration = configuration
        try check(CCodecShims_opus_set_complexity(raw, Int32(configuration.complexity)), "complexity \(configuration.complexity)")
        try check(CCodecShims_opus_set_inband_fec(raw, configuration.inbandFEC ? 1 : 0), "in-band FEC")
        try check(CCodecShims_opus_set_dtx(raw, configuration.dtx ? 1 : 0), "DTX")
        try setBitrate(configuration.bitrate)
        try setExpectedPacketLoss(percent: configuration.expectedPacketLossPercent)
    }

    deinit {
        opus_encoder_destroy(encoder)
    }

    private var raw: UnsafeMutableRawPointer { UnsafeMutableRawPointer(encoder) }

    /// Changes the target bitrate while running, 6000–510000 bits per second.
    public func setBitrate(_ bitsPerSecond: Int) throws(CodecError) {
        guard (6_000...510_000).contains(bitsPerSecond) else {
            throw CodecError(.invalidArgument, "Opus bitrate is 6000–510000 b/s, got \(bitsPerSecond)")
        }
        try check(CCodecShims_opus_set_bitrate(raw, Int32(bitsPerSecond)), "bitrate \(bitsPerSecond)")
        configuration.bitrate = bitsPerSecond
    }

    /// Tells the encoder how much loss to protect against with in-band FEC (0–100 %).
    public func setExpectedPacketLoss(percent: Int) throws(CodecError) {
        guard (0...100).contains(percent) else {
            throw CodecError(.invalidArgument, "Opus packet loss is 0–100 %, got \(percent)")
        }
        try check(CCodecShims_opus_set_packet_loss_percent(raw, Int32(percent)), "packet loss \(percent) %")
        configuration.expectedPacketLossPercent = percent
    }

    /// Whether the last frame was coded as DTX silence; such packets (1–2 bytes) may be skipped (RFC 7587 §3.1.3).
    public var isInDTX: Bool {
        var value: Int32 = 0
        return CCodecShims_opus_get_in_dtx(raw, &value) == OPUS_OK && value != 0
    }

    /// Encodes one 20 ms frame: ``frameSize`` samples per channel, interleaved when stereo.
    ///
    /// - Returns: one Opus packet, the payload of one RTP packet (RFC 7587 §4.2).
    /// - Throws: ``CodecError`` `.invalidArgument` for a wrong sample count, `.codecFailure` if libopus fails.
    public func encode(_ pcm: [Int16]) throws(CodecError) -> ByteBuffer {
        let expected = Self.frameSize * configuration.channels
        guard pcm.count == expected else {
            throw CodecError(.invalidArgument, "an Opus frame is \(expected) samples (20 ms × \(configuration.channels) channels), got \(pcm.count)")
        }
        var packet = ByteBuffer()
        var result: Int32 = 0
        packet.writeWithUnsafeMutableBytes(minimumWritableBytes: Self.maxPacketSize) { output in
            result = pcm.withUnsafeBufferPointer { samples in
                guard let input = samples.baseAddress, let out = output.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
                    return OPUS_BAD_ARG
                }
                return opus_encode(encoder, input, Int32(Self.frameSize), out, Int32(Self.maxPacketSize))
            }
            return max(Int(result), 0)
        }
        guard result > 0 else {
            throw CodecError(.codecFailure, "opus_encode failed: \(Self.describe(result))")
        }
        return packet
    }

    private func check(_ code: Int32, _ what: String) throws(CodecError) {
        guard code == OPUS_OK else {
            throw CodecError(.codecFailure, "libopus refused \(what): \(Self.describe(code))")
        }
    }

    static func describe(_ code: Int32) -> String {
        String(cString: opus_strerror(code))
    }
}
