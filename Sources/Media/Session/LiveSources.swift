import Foundation
import Codecs

/// Where a live session's video comes from.
public enum VideoSourceSpec: Sendable, Hashable {
    /// The moving test pattern with the frame number and send time drawn in (``TestPatternCode``).
    case testPattern(width: Int, height: Int, framesPerSecond: Int)
    /// The X display's screen (`nil`: `$DISPLAY`), encoded as screen content.
    case screen(display: String?, framesPerSecond: Int)
    /// A Y4M file, played in a loop.
    case y4m(path: String, framesPerSecond: Int)

    var framesPerSecond: Int {
        switch self {
        case .testPattern(_, _, let fps), .screen(_, let fps), .y4m(_, let fps): fps
        }
    }

    var content: VP8Encoder.Content {
        if case .screen = self { return .screen }
        return .camera
    }
}

/// Where a live session's audio comes from.
public enum AudioSourceSpec: Sendable, Hashable {
    /// Two mixed sine tones.
    case tone(frequency: Double)
    /// A 48 kHz mono or stereo WAV file (mixed down to mono), played in a loop.
    case wav(path: String)
}

/// A video source opened on the media thread.
protocol LiveVideoSource: AnyObject {
    var width: Int { get }
    var height: Int { get }
    /// The next picture, stamped with `sendTimeMilliseconds` where the source can draw it.
    func nextFrame(sendTimeMilliseconds: UInt64) throws -> VideoFrame
    /// The RTP timestamp of the picture just returned.
    var lastTimestamp: UInt32 { get }
}

/// An audio source opened on the media thread: 20 ms mono frames.
protocol LiveAudioSource: AnyObject {
    func nextFrame() throws -> [Int16]
}

extension VideoSourceSpec {
    func open() throws -> any LiveVideoSource {
        switch self {
        case .testPattern(let width, let height, let fps): try PatternSource(width: width, height: height, fps: fps)
        case .screen(let display, let fps): try ScreenSource(display: display, fps: fps)
        case .y4m(let path, let fps): try Y4MSource(path: path, fps: fps)
        }
    }
}

extension AudioSourceSpec {
    func open() throws -> any LiveAudioSource {
        switch self {
        case .tone(let frequency): try ToneSource(frequency: frequency)
        case .wav(let path): try WAVSource(path: path)
        }
    }
}

private final class PatternSource: LiveVideoSource {
    private var source: TestPatternVideoSource
    var width: Int { source.width }
    var height: Int { source.height }
    private(set) var lastTimestamp: UInt32 = 0

    init(width: Int, height: Int, fps: Int) throws {
        source = try TestPatternVideoSource(width: width, height: height, framesPerSecond: fps)
    }

    func nextFrame(sendTimeMilliseconds: UInt64) throws -> VideoFrame {
        let frame = source.nextFrame(sendTimeMilliseconds: sendTimeMilliseconds)
        lastTimestamp = source.rtpTimestamp(of: source.nextFrameNumber - 1)
        return frame
    }
}

/// A source that stamps pictures by the wall clock (90 kHz, RFC 7741 §6.1).
private class ClockedSource {
    private(set) var lastTimestamp: UInt32 = 0
    private let origin = ContinuousClock.now
    func stamp() {
        lastTimestamp = UInt32(truncatingIfNeeded: Int64((ContinuousClock.now - origin).seconds * Double(VP8Encoder.clockRate)))
    }
}

private final class ScreenSource: ClockedSource, LiveVideoSource {
    private let capture: X11ScreenCapture
    var width: Int { capture.width }
    var height: Int { capture.height }

    init(display: String?, fps: Int) throws {
        capture = try X11ScreenCapture(display: display)
    }

    func nextFrame(sendTimeMilliseconds: UInt64) throws -> VideoFrame {
        stamp()
        return try capture.capture()
    }
}

private final class Y4MSource: ClockedSource, LiveVideoSource {
    private let path: String
    private var reader: Y4MFileReader
    let width: Int
    let height: Int

    init(path: String, fps: Int) throws {
        self.path = path
        reader = try Y4MFileReader(path: path)
        guard let first = try reader.nextFrame() else { throw MediaError(.invalidArgument, "\(path) has no frames") }
        width = first.width
        height = first.height
        reader = try Y4MFileReader(path: path)
    }

    func nextFrame(sendTimeMilliseconds: UInt64) throws -> VideoFrame {
        stamp()
        if let frame = try reader.nextFrame() { return frame }
        reader = try Y4MFileReader(path: path)
        guard let frame = try reader.nextFrame() else { throw MediaError(.invalidArgument, "\(path) has no frames") }
        return frame
    }
}

private final class ToneSource: LiveAudioSource {
    private var tones: ToneAudioSource
    init(frequency: Double) throws {
        tones = try ToneAudioSource(channels: [[.init(frequency: frequency, amplitude: 0.25), .init(frequency: frequency * 1.5, amplitude: 0.1)]])
    }
    func nextFrame() throws -> [Int16] { tones.nextFrame() }
}

private final class WAVSource: LiveAudioSource {
    private let path: String
    private var reader: WAVFileReader
    init(path: String) throws {
        self.path = path
        reader = try WAVFileReader(path: path)
        guard Int(reader.header.sampleRate) == OpusAudioEncoder.sampleRate else {
            throw MediaError(.invalidArgument, "\(path) is \(Int(reader.header.sampleRate)) Hz; meshnode sends 48000 Hz audio (resample it first)")
        }
    }
    func nextFrame() throws -> [Int16] {
        let samples = OpusAudioEncoder.frameSize
        var frame = try reader.read(samplesPerChannel: samples)
        if frame == nil || frame!.count < samples * Int(reader.header.channels) {
            reader = try WAVFileReader(path: path)
            frame = try reader.read(samplesPerChannel: samples)
        }
        guard let pcm = frame, pcm.count >= samples * Int(reader.header.channels) else { return [Int16](repeating: 0, count: samples) }
        guard Int(reader.header.channels) > 1 else { return pcm }
        // Mix down to the one channel meshnode sends.
        return (0..<samples).map { index in
            var sum = 0
            for channel in 0..<Int(reader.header.channels) { sum += Int(pcm[index * Int(reader.header.channels) + channel]) }
            return Int16(clamping: sum / Int(reader.header.channels))
        }
    }
}
