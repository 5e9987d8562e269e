import Codecs
import NIOCore
import RTP

/// The media every simulated participant sends, encoded once.
///
/// Twenty real encoders would make the load generator, not the server under test, the limit on
/// two shared cores; so the bench encodes the test pattern and the tone once per simulcast layer
/// and every participant replays the same payloads under its own SSRCs, sequence numbers and
/// timestamps (``Replayer``). Servers forward without decoding, so they see the same work as
/// with live encoders; a receiver that decoded would see every participant's picture identical.
struct EncodedMedia: Sendable {
    /// One video frame as RTP payloads (VP8 payload descriptor + partition), in send order.
    struct Frame: Sendable {
        var payloads: [ByteBuffer]
        /// Each payload's marker bit (the frame's last packet, RFC 7741 §4.1).
        var markers: [Bool]
        var isKeyframe: Bool
    }

    /// One simulcast layer: its size and its frames, the first a key frame.
    struct Layer: Sendable {
        var width: Int
        var height: Int
        var bitrateKbps: Int
        var frames: [Frame]
    }

    /// Layers from the lowest to the highest resolution (the order of `a=ssrc-group:SIM`).
    var layers: [Layer]
    /// 20 ms Opus frames of the tone.
    var audio: [ByteBuffer]
    var framesPerSecond: Int

    /// The layer sizes for `count` layers whose top is `width`×`height`: halving, as browsers
    /// do, but never below what the test pattern can carry (128 pixels wide).
    static func layerSizes(count: Int, width: Int, height: Int, topKbps: Int) -> [(width: Int, height: Int, kbps: Int)] {
        (0..<count).reversed().map { level in
            let scale = 1 << level
            let layerWidth = max(128, (width / scale) & ~1)
            let layerHeight = max(72, (height / scale) & ~1)
            return (width: layerWidth, height: layerHeight, kbps: max(50, topKbps / (scale * scale)))
        }
    }

    /// Encodes `seconds` of the test pattern per layer (one key frame at the start: the replay
    /// loops, so every loop starts with one) and as much of a 440 Hz tone.
    static func encode(layers count: Int, width: Int, height: Int, framesPerSecond: Int, topKbps: Int, seconds: Int) throws -> EncodedMedia {
        let frameCount = framesPerSecond * seconds
        var layers: [Layer] = []
        for size in layerSizes(count: count, width: width, height: height, topKbps: topKbps) {
            var source = try TestPatternVideoSource(width: size.width, height: size.height, framesPerSecond: framesPerSecond)
            let encoder = try VP8Encoder(.init(width: size.width, height: size.height, bitrateKbps: size.kbps,
                                               framesPerSecond: framesPerSecond, keyframeInterval: frameCount))
            var packetizer = try VP8Packetizer(payloadType: 96, ssrc: 0)
            var frames: [Frame] = []
            for number in 0..<frameCount {
                let picture = source.nextFrame(sendTimeMilliseconds: UInt64(number * 1000 / framesPerSecond))
                let timestamp = source.rtpTimestamp(of: UInt32(number))
                if number == 0 { encoder.requestKeyframe() }
                guard let encoded = try encoder.encode(picture, timestamp: timestamp) else { continue }
                let packets = packetizer.packetize(frame: encoded.data, timestamp: timestamp)
                frames.append(Frame(payloads: packets.map(\.payload), markers: packets.map(\.marker), isKeyframe: encoded.isKeyframe))
            }
            guard frames.first?.isKeyframe == true else {
                throw BenchError("layer \(size.width)x\(size.height): the encoder's first frame is not a key frame")
            }
            layers.append(Layer(width: size.width, height: size.height, bitrateKbps: size.kbps, frames: frames))
        }
        var tone = try ToneAudioSource()
        let opus = try OpusAudioEncoder()
        var audio: [ByteBuffer] = []
        for _ in 0..<(seconds * 50) { audio.append(try opus.encode(tone.nextFrame())) }
        return EncodedMedia(layers: layers, audio: audio, framesPerSecond: framesPerSecond)
    }
}

/// A usage or setup failure, printed as `{"event":"error", …}`.
struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
