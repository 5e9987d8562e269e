internal import COpus
import NIOCore

/// An Opus decoder (RFC 6716) at 48 kHz, with forward error correction and packet loss concealment
/// for frames that never arrived.
///
/// Not thread-safe: one decoder belongs to one receiving stream and is used from one task at a time.
public final class OpusAudioDecoder {
    /// 1 (mono) or 2 (stereo) output channels.
    public let channels: Int
    private let decoder: OpaquePointer

    /// The largest frame one packet can hold: 120 ms at 48 kHz (RFC 6716 §3.2.5).
    static let maxSamplesPerChannel = 5760

    /// Creates a decoder that outputs `channels` interleaved channels at 48 kHz.
    ///
    /// - Throws: ``CodecError`` `.invalidArgument` for a channel count other than 1 or 2.
    public init(channels: Int = 1) throws(CodecError) {
        guard channels == 1 || channels == 2 else {
            throw CodecError(.invalidArgument, "Opus channels must be 1 or 2, got \(channels)")
        }
        var error: Int32 = 0
        guard let decoder = opus_decoder_create(Int32(OpusAudioEncoder.sampleRate), Int32(channels), &error), error == OPUS_OK else {
            throw CodecError(.codecFailure, "opus_decoder_create failed: \(OpusAudioEncoder.describe(error))")
        }
        self.decoder = decoder
        self.channels = channels
    }

    deinit {
        opus_decoder_destroy(decoder)
    }

    /// Decodes one Opus packet into interleaved PCM.
    ///
    /// - Throws: ``CodecError`` `.codecFailure` when the packet is corrupt.
    public func decode(_ packet: ByteBuffer) throws(CodecError) -> [Int16] {
        try run(packet: packet, samplesPerChannel: Self.maxSamplesPerChannel, fec: false)
    }

    /// Recovers a lost frame from the FEC data that the *next* packet carries (RFC 6716 §2.1.7).
    /// When the next packet has no FEC data, libopus conceals the loss instead.
    ///
    /// - Parameter samplesPerChannel: the duration of the lost frame (960 for 20 ms).
    public func decodeFEC(from nextPacket: ByteBuffer, samplesPerChannel: Int = OpusAudioEncoder.frameSize) throws(CodecError) -> [Int16] {
        try run(packet: nextPacket, samplesPerChannel: samplesPerChannel, fec: true)
    }

    /// Synthesizes audio for a lost frame from the decoder's state (packet loss concealment, RFC 6716 §4.4).
    public func concealLoss(samplesPerChannel: Int = OpusAudioEncoder.frameSize) throws(CodecError) -> [Int16] {
        try run(packet: nil, samplesPerChannel: samplesPerChannel, fec: false)
    }

    private func run(packet: ByteBuffer?, samplesPerChannel: Int, fec: Bool) throws(CodecError) -> [Int16] {
        guard samplesPerChannel > 0, samplesPerChannel <= Self.maxSamplesPerChannel, samplesPerChannel % 120 == 0 else {
            throw CodecError(.invalidArgument, "Opus frame of \(samplesPerChannel) samples is not a multiple of 2.5 ms up to 120 ms")
        }
        var pcm = [Int16](repeating: 0, count: samplesPerChannel * channels)
        let decoded: Int32 = pcm.withUnsafeMutableBufferPointer { output in
            guard let out = output.baseAddress else { return OPUS_BAD_ARG }
            guard let packet, packet.readableBytes > 0 else {
                return opus_decode(decoder, nil, 0, out, Int32(samplesPerChannel), 0)
            }
            return packet.withUnsafeReadableBytes { bytes in
                opus_decode(decoder, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(bytes.count),
                            out, Int32(samplesPerChannel), fec ? 1 : 0)
            }
        }
        guard decoded >= 0 else {
            throw CodecError(.codecFailure, "opus_decode failed: \(OpusAudioEncoder.describe(decoded))")
        }
        pcm.removeLast(pcm.count - Int(decoded) * channels)
        return pcm
    }
}
