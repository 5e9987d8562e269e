import NIOCore
import Testing
import TestSupport
@testable import Media
import Codecs
import RTP

@Suite("Audio playout buffer: Opus with FEC and PLC (RFC 6716 §2.1.7, §4.4; RFC 7587)")
struct AudioPlayoutTests {
    /// Sends `frames` of voice through a link with `loss` and jitter and plays them out on a 20 ms clock.
    private func run(loss: Double, fec: Bool, seed: UInt64) throws -> (output: [Int16], clean: [Int16], counters: AudioPlayoutBuffer.Counters) {
        let frames = SyntheticMedia.voice(frames: 250)
        let encoder = try OpusAudioEncoder(.init(bitrate: 32_000, inbandFEC: fec, expectedPacketLossPercent: fec ? 20 : 0))
        let packets = try frames.enumerated().map { index, pcm in
            RTPPacket(payloadType: 111, sequenceNumber: UInt16(truncatingIfNeeded: 65_500 + index), timestamp: UInt32(index * 960), ssrc: 7,
                      payload: try encoder.encode(pcm))
        }
        let reference = try OpusAudioDecoder()
        let clean = try packets.flatMap { try reference.decode($0.payload) }

        var link = SimulatedLink<RTPPacket>(configuration: .init(delay: .milliseconds(30), lossProbability: loss,
                                                                 reorderProbability: 0.1, reorderDelay: .milliseconds(25)), seed: seed)
        let playout = try AudioPlayoutBuffer(configuration: .init(targetDelayFrames: 3))
        var output: [Int16] = []
        var started = false
        var now = Duration.zero
        var sent = 0
        while output.count < clean.count {
            if now >= .milliseconds(20 * sent), sent < packets.count {
                link.send(packets[sent], size: 100, now: now)
                sent += 1
            }
            for (packet, _) in link.receive(now: now) { playout.insert(packet) }
            if now.milliseconds.truncatingRemainder(dividingBy: 20) == 0, now >= .milliseconds(30) {
                let frame = playout.nextFrame()
                if frame.source != .silence { started = true }
                if started { output += frame.pcm }
            }
            now += .milliseconds(1)
        }
        return (output, clean, playout.counters)
    }

    @Test("10% loss with reordering: FEC recovers most lost frames, PLC the rest; the output stays close to a lossless decode")
    func lossWithFEC() throws {
        let withFEC = try run(loss: 0.1, fec: true, seed: 5)
        let withoutFEC = try run(loss: 0.1, fec: false, seed: 5)
        let snrFEC = SyntheticMedia.snr(withFEC.output, reference: withFEC.clean)
        let snrPLC = SyntheticMedia.snr(withoutFEC.output, reference: withoutFEC.clean)
        print("Opus playout 10% loss: FEC recovered \(withFEC.counters.recoveredByFEC), concealed \(withFEC.counters.concealed), late \(withFEC.counters.late); SNR vs lossless decode \(String(format: "%.1f", snrFEC)) dB with FEC, \(String(format: "%.1f", snrPLC)) dB with PLC only")
        #expect(withFEC.counters.recoveredByFEC > 10)
        #expect(withFEC.counters.decoded > 200)
        #expect(snrFEC > snrPLC)
        #expect(snrFEC > 6)
    }

    @Test("packets that come after their turn are dropped; buffering waits for the target delay")
    func lateAndBuffering() throws {
        let encoder = try OpusAudioEncoder()
        let voice = SyntheticMedia.voice(frames: 6)
        let packets = try voice.enumerated().map { index, pcm in
            RTPPacket(payloadType: 111, sequenceNumber: UInt16(index), timestamp: UInt32(index * 960), ssrc: 7, payload: try encoder.encode(pcm))
        }
        let playout = try AudioPlayoutBuffer(configuration: .init(targetDelayFrames: 2))
        playout.insert(packets[0])
        #expect(playout.nextFrame().source == .silence)
        playout.insert(packets[1])
        #expect(playout.nextFrame().source == .decoded)
        #expect(playout.nextFrame().source == .decoded)
        playout.insert(packets[3])
        playout.insert(packets[4])
        #expect(playout.nextFrame().source == .forwardErrorCorrection)
        playout.insert(packets[2])
        #expect(playout.counters.late == 1)
        #expect(playout.nextFrame().sequenceNumber == 3)
    }
}
