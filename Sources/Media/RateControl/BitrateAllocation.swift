import Codecs
/// How a sender splits its bandwidth estimate between one Opus and one VP8 stream: audio first
/// (it is small and matters most), within Opus's useful range, the rest to video after an
/// allowance for RTP/UDP/SRTP overhead.
public struct BitrateAllocation: Hashable, Sendable {
    /// The Opus target in bits per second (6000–510000, RFC 7587 §3.1.1 recommends 6–510 kb/s).
    public var audioBitrate: Int
    /// The VP8 target in kilobits per second.
    public var videoKbps: Int

    /// Splits `target` bits per second: audio gets 10 % of it, kept within `audioRange`; video gets
    /// the rest less `overhead` (a share for packet headers), at least `minimumVideoKbps`.
    public init(target: Double, audioRange: ClosedRange<Int> = 16_000...64_000, overhead: Double = 0.05, minimumVideoKbps: Int = 30) {
        let audio = min(max(Int(target * 0.1), audioRange.lowerBound), audioRange.upperBound)
        audioBitrate = audio
        videoKbps = max(minimumVideoKbps, Int((target - Double(audio)) * (1 - overhead) / 1000))
    }

    /// Sets the encoders' bitrates.
    public func apply(video: VP8Encoder?, audio: OpusAudioEncoder?) throws {
        try video?.setBitrate(kbps: min(videoKbps, VP8Encoder.maximumBitrateKbps))
        try audio?.setBitrate(audioBitrate)
    }
}
