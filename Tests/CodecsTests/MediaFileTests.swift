import Foundation
import NIOCore
import Testing
import TestSupport
@testable import Codecs

@Suite("Media files: IVF, WAV, Y4M written and read back, checked by ffprobe",
       .enabled(if: Tools.ffmpeg, "ffmpeg or ffprobe is not installed (Debian ffmpeg; `make deps` installs it)"))
struct MediaFileTests {
    @Test("IVF: 45 VP8 frames that ffprobe counts and decodes, and that IVFFileReader reads back")
    func ivfRoundTrip() async throws {
        let temporary = TemporaryDirectory("media")
        defer { withExtendedLifetime(temporary) {} }
        let directory = temporary.path
        let path = directory + "/video.ivf"
        let encoder = try VP8Encoder(.init(width: 320, height: 240, bitrateKbps: 400))
        var source = try TestPatternVideoSource(width: 320, height: 240)
        let writer = try IVFFileWriter(path: path, width: 320, height: 240)
        var written: [ByteBuffer] = []
        for number in 0..<45 {
            let picture = source.nextFrame(sendTimeMilliseconds: UInt64(number))
            let encoded = try #require(try encoder.encode(picture, timestamp: source.rtpTimestamp(of: UInt32(number))))
            try writer.write(frame: encoded.data, timestamp: encoded.timestamp)
            written.append(encoded.data)
        }
        try writer.close()

        let info = try await probe(path, countFrames: true)
        #expect(info["codec_name"] as? String == "vp8")
        #expect(info["width"] as? Int == 320 && info["height"] as? Int == 240)
        #expect(info["nb_read_frames"] as? String == "45")
        let duration = Double(info["duration"] as? String ?? "") ?? 0
        #expect(abs(duration - 1.5) < 0.1, "45 frames at 30 fps, got \(duration) s")

        let reader = try IVFFileReader(path: path)
        #expect(reader.header.frameCount == 45 && reader.header.fourCC == "VP80")
        var read: [ByteBuffer] = []
        var times: [UInt64] = []
        while let frame = try reader.nextFrame() {
            read.append(frame.data)
            times.append(frame.presentationTime)
        }
        #expect(read == written)
        #expect(times.prefix(3) == [0, 1, 2], "pts count frames at 30 fps")
    }

    @Test("WAV: 2 s of stereo tones that ffprobe reads as 48 kHz PCM, and WAVFileReader reads back")
    func wavRoundTrip() async throws {
        let temporary = TemporaryDirectory("media")
        defer { withExtendedLifetime(temporary) {} }
        let directory = temporary.path
        let path = directory + "/audio.wav"
        var tones = try ToneAudioSource(channels: [[.init(frequency: 440)], [.init(frequency: 880)]])
        let writer = try WAVFileWriter(path: path, channels: 2)
        var samples: [Int16] = []
        for _ in 0..<100 {
            let frame = tones.nextFrame()
            samples += frame
            try writer.write(frame)
        }
        try writer.close()
        let info = try await probe(path)
        #expect(info["codec_name"] as? String == "pcm_s16le")
        #expect(info["sample_rate"] as? String == "48000")
        #expect(info["channels"] as? Int == 2)
        #expect(abs((Double(info["duration"] as? String ?? "") ?? 0) - 2.0) < 0.01)

        let reader = try WAVFileReader(path: path)
        #expect(reader.header.sampleRate == 48_000 && reader.header.channels == 2)
        var read: [Int16] = []
        while let chunk = try reader.read(samplesPerChannel: 960) { read += chunk }
        #expect(read == samples)
        expectError(CodecError.Code.malformed) {
            try Data("RIFX0000WAVE".utf8).write(to: URL(fileURLWithPath: directory + "/bad.wav"))
            _ = try WAVFileReader(path: directory + "/bad.wav")
        }
    }

    @Test("Ogg Opus (RFC 7845): 100 packets that ffprobe reads as 2 s of Opus and ffmpeg decodes")
    func oggOpus() async throws {
        let temporary = TemporaryDirectory("media")
        defer { withExtendedLifetime(temporary) {} }
        let directory = temporary.path
        let path = directory + "/audio.opus"
        let encoder = try OpusAudioEncoder(.init(channels: 2, application: .audio))
        var tones = try ToneAudioSource(channels: [[.init(frequency: 440)], [.init(frequency: 660)]])
        let writer = try OggOpusFileWriter(path: path, channels: 2)
        for _ in 0..<100 { try writer.write(packet: encoder.encode(tones.nextFrame())) }
        try writer.close()
        let info = try await probe(path)
        #expect(info["codec_name"] as? String == "opus")
        #expect(info["channels"] as? Int == 2)
        let duration = Double(info["duration"] as? String ?? "") ?? 0
        #expect(abs(duration - (2.0 - 312.0 / 48_000)) < 0.01, "2 s less the pre-skip, got \(duration)")
        // ffmpeg decodes every page (a CRC error would stop it).
        let decoded = directory + "/decoded.wav"
        let result = try await Subprocess.run("ffmpeg", ["-v", "error", "-i", path, "-c:a", "pcm_s16le", decoded])
        #expect(result.status == 0, "\(result.output)")
        let reader = try WAVFileReader(path: decoded)
        #expect(abs(Int(reader.header.dataSize) / 4 - (96_000 - 312)) < 10)
        expectError(CodecError.Code.truncated) { try writer.write(packet: ByteBuffer()) }
    }

    @Test("Y4M and WAV made by ffmpeg are read as sources")
    func filesFromFFmpeg() async throws {
        let temporary = TemporaryDirectory("media")
        defer { withExtendedLifetime(temporary) {} }
        let directory = temporary.path
        let y4m = directory + "/in.y4m", wav = directory + "/in.wav"
        let video = try await Subprocess.run("ffmpeg", ["-v", "error", "-f", "lavfi", "-i", "testsrc=size=176x144:rate=15", "-frames:v", "7",
                                                         "-pix_fmt", "yuv420p", y4m])
        let audio = try await Subprocess.run("ffmpeg", ["-v", "error", "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000:duration=0.5",
                                                         "-c:a", "pcm_s16le", wav])
        #expect(video.status == 0 && audio.status == 0, "\(video.output)\(audio.output)")
        let reader = try Y4MFileReader(path: y4m)
        #expect(reader.width == 176 && reader.height == 144 && reader.frameRate.numerator == 15)
        var frames: [VideoFrame] = []
        while let frame = try reader.nextFrame() { frames.append(frame) }
        #expect(frames.count == 7)
        #expect(Set(frames[0].y).count > 50, "testsrc is a detailed picture")
        // The Y4M frames encode as VP8 at this size.
        let encoder = try VP8Encoder(.init(width: 176, height: 144))
        #expect(try encoder.encode(frames[0], timestamp: 0)?.isKeyframe == true)

        let sine = try WAVFileReader(path: wav)
        var samples: [Int16] = []
        while let chunk = try sine.read(samplesPerChannel: 4096) { samples += chunk }
        #expect(samples.count == 24_000)
        let crossings = zip(samples, samples.dropFirst()).filter { ($0 < 0) != ($1 < 0) }.count
        #expect((990...1010).contains(crossings), "1 kHz for 0.5 s crosses zero about 1000 times, got \(crossings)")
    }
}
