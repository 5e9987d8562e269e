import Foundation
import NIOCore
import Testing
import TestSupport
@testable import Codecs

@Suite("Opus (RFC 6716, RFC 7587)")
struct OpusTests {
    /// Finds the decoder delay (the encoder's lookahead) by the best-matching lag.
    private func bestLagSNR(decoded: [Int16], original: [Int16]) -> (lag: Int, snr: Double) {
        var best = (lag: 0, snr: -Double.infinity)
        for lag in 0..<800 {
            let snr = SyntheticMedia.snr(Array(decoded[lag..<(lag + 24_000)]), reference: Array(original[0..<24_000]))
            if snr > best.snr { best = (lag, snr) }
        }
        return best
    }

    @Test("mono voice at 32 kb/s: 20 ms packets, RFC 7587 payload, faithful decode")
    func roundTrip() throws {
        let encoder = try OpusAudioEncoder()
        let decoder = try OpusAudioDecoder()
        let frames = SyntheticMedia.voice(frames: 100)
        var decoded: [Int16] = []
        var bytes = 0
        var encodeTime = Duration.zero
        for pcm in frames {
            let start = ContinuousClock.now
            let packet = try encoder.encode(pcm)
            encodeTime += ContinuousClock.now - start
            bytes += packet.readableBytes
            let payload = try OpusPayload(parsing: packet)
            #expect(payload.samplesPerChannel == 960)
            #expect(!payload.isStereo)
            decoded += try decoder.decode(packet)
        }
        let (lag, snr) = bestLagSNR(decoded: decoded, original: frames.flatMap { $0 })
        let realTime = 2.0 / (Double(encodeTime.components.seconds) + Double(encodeTime.components.attoseconds) / 1e18)
        print("Opus mono 32 kb/s: \(bytes * 8 / 2) b/s actual, delay \(lag) samples, SNR \(String(format: "%.1f", snr)) dB, encode \(String(format: "%.0f", realTime))x real time")
        #expect(snr > 10)
        #expect((20_000...44_000).contains(bytes * 8 / 2))
    }

    @Test("a lost packet: in-band FEC from the next packet beats concealment, both beat silence")
    func lossRecovery() throws {
        let encoder = try OpusAudioEncoder(.init(bitrate: 32_000, inbandFEC: true, expectedPacketLossPercent: 20))
        let frames = SyntheticMedia.voice(frames: 60)
        let packets = try frames.map { try encoder.encode($0) }
        // Reference: what a receiver that got every packet plays.
        let reference = try OpusAudioDecoder()
        let clean = try packets.map { try reference.decode($0) }

        let lost = 40
        let withFEC = try OpusAudioDecoder()
        let withPLC = try OpusAudioDecoder()
        var fecFrame: [Int16] = [], plcFrame: [Int16] = []
        for index in 0..<packets.count {
            if index == lost {
                plcFrame = try withPLC.concealLoss()
                continue
            }
            if index == lost + 1 { fecFrame = try withFEC.decodeFEC(from: packets[index]) }
            _ = try withFEC.decode(packets[index])
            _ = try withPLC.decode(packets[index])
        }
        let fecSNR = SyntheticMedia.snr(fecFrame, reference: clean[lost])
        let plcSNR = SyntheticMedia.snr(plcFrame, reference: clean[lost])
        let silenceSNR = SyntheticMedia.snr([Int16](repeating: 0, count: 960), reference: clean[lost])
        print("Opus lost frame vs clean decode: FEC \(String(format: "%.1f", fecSNR)) dB, PLC \(String(format: "%.1f", plcSNR)) dB, silence \(String(format: "%.1f", silenceSNR)) dB")
        #expect(fecFrame.count == 960 && plcFrame.count == 960)
        #expect(fecSNR > plcSNR)
        #expect(fecSNR > 3)
        #expect(plcSNR > silenceSNR)
    }

    @Test("stereo frames, bitrate change, DTX on silence (RFC 7587 §3.1.3)")
    func stereoAndDTX() throws {
        let stereo = try OpusAudioEncoder(.init(channels: 2, bitrate: 64_000, application: .audio))
        let packet = try stereo.encode(SyntheticMedia.voice(frames: 1, channels: 2)[0])
        #expect(try OpusPayload(parsing: packet).isStereo)
        #expect(try OpusAudioDecoder(channels: 2).decode(packet).count == 1920)
        try stereo.setBitrate(24_000)
        #expect(stereo.configuration.bitrate == 24_000)

        let dtx = try OpusAudioEncoder(.init(dtx: true))
        let silence = [Int16](repeating: 0, count: 960)
        var sizes: [Int] = []
        for _ in 0..<30 { sizes.append(try dtx.encode(silence).readableBytes) }
        #expect(dtx.isInDTX)
        #expect(sizes.suffix(10).allSatisfy { $0 <= 2 })
    }

    @Test("bad settings and input are refused with a reason")
    func badInput() throws {
        expectError(CodecError.Code.invalidArgument) { _ = try OpusAudioEncoder(.init(channels: 3)) }
        expectError(CodecError.Code.invalidArgument) { _ = try OpusAudioEncoder(.init(bitrate: 1_000)) }
        expectError(CodecError.Code.invalidArgument) { _ = try OpusAudioDecoder(channels: 0) }
        let encoder = try OpusAudioEncoder()
        expectError(CodecError.Code.invalidArgument) { _ = try encoder.encode([Int16](repeating: 0, count: 100)) }
        expectError(CodecError.Code.codecFailure) { _ = try OpusAudioDecoder().decode(hexBuffer("fb ff ff ff ff")) }
    }

    @Test("TOC byte: mode, frame size, count (RFC 6716 §3.1–3.2)")
    func tocParsing() throws {
        // config 1 (SILK NB 20 ms), code 0.
        let silk = try OpusPayload(parsing: hexBuffer("08 00"))
        #expect(silk.mode == .silk && silk.samplesPerChannel == 960 && silk.frameCount == 1)
        // config 31 (CELT FB 20 ms), stereo, code 1: two frames = 40 ms.
        let celt = try OpusPayload(parsing: hexBuffer("fd 00 00"))
        #expect(celt.mode == .celt && celt.isStereo && celt.samplesPerChannel == 1920)
        // config 13 (hybrid FB 20 ms), code 3 with 3 frames.
        let hybrid = try OpusPayload(parsing: hexBuffer("6b 03 00"))
        #expect(hybrid.mode == .hybrid && hybrid.frameCount == 3 && hybrid.samplesPerChannel == 2880)
        expectError(CodecError.Code.truncated) { _ = try OpusPayload(parsing: ByteBuffer()) }
        expectError(CodecError.Code.truncated) { _ = try OpusPayload(parsing: hexBuffer("0b")) }
        expectError(CodecError.Code.malformed) { _ = try OpusPayload(parsing: hexBuffer("0b 00")) }
        // 60 ms SILK frames × 3 = 180 ms > 120 ms.
        expectError(CodecError.Code.malformed) { _ = try OpusPayload(parsing: hexBuffer("1b 03")) }
    }
}
