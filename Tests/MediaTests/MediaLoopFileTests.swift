import Foundation
import Testing
import TestSupport
@testable import Media

@Suite("Media loop files, checked by ffprobe",
       .enabled(if: Tools.ffmpeg, "ffmpeg or ffprobe is not installed (Debian ffmpeg; `make deps` installs it)"))
struct MediaLoopFileTests {
    @Test("the media loop writes IVF and WAV files that ffprobe reads with the expected frame count and duration")
    func mediaLoopFiles() async throws {
        let temporary = TemporaryDirectory("media")
        defer { withExtendedLifetime(temporary) {} }
        let directory = temporary.path
        let report = try MediaLoop(configuration: .init(duration: .seconds(2), lossProbability: 0.02, outputDirectory: directory)).run()
        let video = try await probe(directory + "/video.ivf", countFrames: true)
        #expect(video["codec_name"] as? String == "vp8")
        #expect(Int(video["nb_read_frames"] as? String ?? "") == report.video.frames)
        let audio = try await probe(directory + "/audio.wav")
        #expect(audio["codec_name"] as? String == "pcm_s16le")
        let duration = Double(audio["duration"] as? String ?? "") ?? 0
        #expect(duration > 1.9 && duration < 2.1, "2 s of audio, got \(duration)")
        let opus = try await probe(directory + "/audio.opus")
        #expect(opus["codec_name"] as? String == "opus")
        #expect((Double(opus["duration"] as? String ?? "") ?? 0) > 1.5)
    }
}
