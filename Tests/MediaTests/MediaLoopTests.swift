import Foundation
import Testing
@testable import Media
import Codecs

@Suite("End to end: test pattern → VP8 → RTP → 5% loss and reordering → NACK/PLI → decode")
struct MediaLoopTests {
    @Test("5% loss and reordering both ways: NACK (RTX) recovers, frame numbers are continuous, PSNR above the floor")
    func lossyLoop() throws {
        let loop = MediaLoop(configuration: .init(duration: .seconds(6), lossProbability: 0.05, reorderProbability: 0.05, useRTX: true, seed: 11))
        let report = try loop.run()
        let video = report.video
        print("media loop 5% loss: frames sent \(report.framesSent), decoded \(video.patternFrameNumbers.count), lost \(video.lost), recovered by NACK \(video.recoveredByNACK), NACK requests \(video.nackRequests), lost for good \(video.lostForGood), PLIs \(video.pictureLossIndications), keyframes sent \(report.keyframesSent), PSNR mean \(String(format: "%.1f", report.meanPSNR)) min \(String(format: "%.1f", report.minimumPSNR)) dB, jitter \(String(format: "%.2f", video.jitterMilliseconds)) ms, latency \(String(format: "%.0f", video.meanLatencyMilliseconds)) ms, audio FEC \(report.audio.recoveredByFEC) PLC \(report.audio.concealed), RTT \(report.measuredRoundTripMilliseconds.map { String(format: "%.1f", $0) } ?? "-") ms")
        #expect(video.lost > 0, "the link lost packets")
        #expect(video.recoveredByNACK > 0)
        #expect(video.patternInOrder)
        #expect(video.patternUnreadable == 0)
        #expect(report.minimumPSNR > 30)
        #expect(report.meanPSNR > 34)
        // Every frame the sender encoded is decoded, except where a PLI had to cut a gap.
        if video.lostForGood == 0 {
            #expect(video.patternFrameNumbers == Array(0..<report.framesSent))
        }
        #expect(video.patternGaps <= 3 * video.pictureLossIndications)
        #expect(video.patternFrameNumbers.count >= report.framesSent * 9 / 10)
        #expect(report.audio.recoveredByFEC + report.audio.concealed > 0)
        // SR/RR (RFC 3550 §6.4.1) measure the 2 × 20 ms path, plus up to 15 ms of reordering delay.
        let rtt = try #require(report.measuredRoundTripMilliseconds)
        #expect(rtt >= 39 && rtt < 60, "measured RTT \(rtt) ms")
    }

    @Test("a run repeats exactly for a seed: the sessions read only the simulated clock and seeded randomness")
    func repeatsForASeed() throws {
        let configuration = MediaLoop.Configuration(duration: .seconds(2), lossProbability: 0.05, reorderProbability: 0.05, seed: 7)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let first = try encoder.encode(MediaLoop(configuration: configuration).run())
        let second = try encoder.encode(MediaLoop(configuration: configuration).run())
        #expect(first == second, "\(String(decoding: first, as: UTF8.self))\n\(String(decoding: second, as: UTF8.self))")
    }

    @Test("packets lost for good (one NACK each): PLI, keyframe, and the stream resumes in order without broken frames")
    func outageRecoveredByPLI() throws {
        // 12% loss both ways and a single NACK per packet: some packets are lost for good, so PLIs are needed.
        let loop = MediaLoop(configuration: .init(duration: .seconds(4), lossProbability: 0.12, reorderProbability: 0.05, useRTX: false,
                                                  maxNACKRetries: 1, seed: 3))
        let report = try loop.run()
        let video = report.video
        print("media loop 12% loss, one NACK per packet: decoded \(video.patternFrameNumbers.count)/\(report.framesSent), gaps \(video.patternGaps), recovered by NACK \(video.recoveredByNACK), PLIs \(video.pictureLossIndications), keyframes sent \(report.keyframesSent)")
        #expect(video.patternInOrder)
        #expect(video.recoveredByNACK > 0)
        #expect(video.lostForGood > 0 && video.pictureLossIndications > 0 && report.keyframesSent > 1)
        #expect(video.patternGaps > 0, "frames between a loss and the next keyframe are skipped, never shown broken")
        #expect(video.patternFrameNumbers.count > report.framesSent / 3)
        #expect(video.patternFrameNumbers.last ?? 0 >= report.framesSent - 15, "the stream is running in its last half second")
    }

    @Test("a 400 kb/s bottleneck: the sender lowers VP8 and Opus to fit (transport-cc), and the stream stays continuous")
    func adaptsToBottleneck() throws {
        let loop = MediaLoop(configuration: .init(videoBitrateKbps: 900, duration: .seconds(15), lossProbability: 0, reorderProbability: 0,
                                                  capacityBitsPerSecond: 400_000, adaptBitrate: true, seed: 2))
        let report = try loop.run()
        let video = report.video
        let settled = report.targetKbpsPerSecond.suffix(5)
        print("media loop, 400 kb/s bottleneck from 900 kb/s: target per second \(report.targetKbpsPerSecond) kb/s; VP8 \(report.finalVideoKbps) kb/s, Opus \(report.finalAudioBitrate) b/s at the end; queue drops \(report.packetsDroppedByQueue); decoded \(video.patternFrameNumbers.count)/\(report.framesSent), gaps \(video.patternGaps), latency \(String(format: "%.0f", video.meanLatencyMilliseconds)) ms")
        let mean = settled.reduce(0, +) / max(settled.count, 1)
        #expect(mean < 400 && mean > 250, "the target settles below the capacity")
        #expect(settled.allSatisfy { $0 < 450 }, "probing overshoots little")
        #expect(report.finalVideoKbps < 400)
        #expect(report.finalAudioBitrate <= 48_000, "Opus gets about a tenth")
        #expect(video.patternInOrder)
        #expect(video.patternFrameNumbers.count >= report.framesSent * 9 / 10)
    }
}
