import Foundation
import NIOCore
import Testing
import TestSupport
import Codecs
import RTP
@testable import Media

@Suite("VP8 encode → RTP → loss/reorder → NACK/PLI → reassemble → decode")
struct VP8RoundTripTests {
    static let width = 320
    static let height = 240
    static let psnrFloor = 40.0

    /// Runs `frames` pictures through encoder, packetizer, a lossy reordering network, NACK
    /// retransmission from a send history, assembler and decoder. Packets of the frames in
    /// `unrecoverable` are lost along with their history, so only a PLI-triggered keyframe recovers.
    private func run(frames count: Int, lossPercent: Int, unrecoverable: Set<Int>, seed: UInt64)
        throws -> (decoded: [(number: Int, psnr: Double)], keyframes: Int, nacked: Int, plis: Int)
    {
        let encoder = try VP8Encoder(.init(width: Self.width, height: Self.height, bitrateKbps: 800, framesPerSecond: 30))
        let decoder = try VP8Decoder()
        var packetizer = try VP8Packetizer(payloadType: 96, ssrc: 0xCAFE, firstSequenceNumber: 65_500)
        var assembler = VP8FrameAssembler()
        var generator = SplitMix64(seed: seed)
        var history: [UInt16: RTPPacket] = [:]
        var sources: [UInt32: VideoFrame] = [:]
        var decoded: [(number: Int, psnr: Double)] = []
        var keyframes = 0, nacked = 0, plis = 0
        var stalledFrames = 0

        for number in 0..<count {
            let source = try SyntheticMedia.videoFrame(number: number, width: Self.width, height: Self.height)
            let timestamp = UInt32(number * 3000)
            sources[timestamp] = source
            guard let encoded = try encoder.encode(source, timestamp: timestamp) else { continue }
            if encoded.isKeyframe { keyframes += 1 }
            var packets = packetizer.packetize(frame: encoded.data, timestamp: timestamp)
            // Every packet goes through the wire format.
            packets = try packets.map { try RTPPacket(parsing: $0.serialized()) }
            let lostForGood = unrecoverable.contains(number)
            for packet in packets where !lostForGood { history[packet.sequenceNumber] = packet }
            // The network: drop some, swap neighbours.
            var arriving = packets.filter { _ in !lostForGood && Int.random(in: 0..<100, using: &generator) >= lossPercent }
            if arriving.count > 1, Bool.random(using: &generator) { arriving.swapAt(0, arriving.count - 1) }

            var completed: [VP8FrameAssembler.Frame] = []
            for packet in arriving { completed += try assembler.insert(packet) }
            // Receiver: NACK what is missing (RFC 4585 §6.2.1); the sender retransmits from its history.
            let missing = assembler.missingSequenceNumbers
            if !missing.isEmpty {
                let nack = RTCPGenericNACK(senderSSRC: 1, mediaSSRC: 0xCAFE, lostSequenceNumbers: missing)
                let received = try RTCPPacket.parseCompound(RTCPPacket.serializeCompound([.nack(nack)]))
                guard case .nack(let request) = received.first else { throw CodecError(.malformed, "NACK did not survive") }
                for sequence in request.lostSequenceNumbers {
                    guard let packet = history[sequence] else { continue }
                    nacked += 1
                    completed += try assembler.insert(packet)
                }
            }
            // Receiver: a gap no retransmission fills calls for a keyframe (RFC 4585 §6.3.1).
            stalledFrames = completed.isEmpty ? stalledFrames + 1 : 0
            if stalledFrames >= 2 {
                let pli = try RTCPPacket.parseCompound(RTCPPacket.serializeCompound([.pictureLossIndication(.init(senderSSRC: 1, mediaSSRC: 0xCAFE))]))
                if case .pictureLossIndication = pli.first {
                    encoder.requestKeyframe()
                    plis += 1
                    stalledFrames = 0
                }
            }
            for frame in completed {
                guard let picture = try decoder.decode(frame.data), let reference = sources[frame.timestamp] else { continue }
                decoded.append((SyntheticMedia.frameNumber(of: picture), picture.lumaPSNR(against: reference) ?? 0))
            }
        }
        return (decoded, keyframes, nacked, plis)
    }

    @Test("5% loss with reordering: NACK recovers every frame, in order, above the PSNR floor")
    func lossRecoveredByNACK() throws {
        let result = try run(frames: 90, lossPercent: 5, unrecoverable: [], seed: 7)
        #expect(result.nacked > 0)
        #expect(result.decoded.map(\.number) == Array(0..<90))
        let psnrs = result.decoded.map(\.psnr)
        let mean = psnrs.reduce(0, +) / Double(psnrs.count)
        print("VP8 320x240 800 kb/s, 5% loss: \(result.nacked) packets NACKed, luma PSNR mean \(String(format: "%.1f", mean)) dB, min \(String(format: "%.1f", psnrs.min() ?? 0)) dB")
        #expect(psnrs.allSatisfy { $0 >= Self.psnrFloor })
        #expect(result.keyframes == 1)
    }

    @Test("a frame lost for good stalls the stream until a PLI brings a keyframe")
    func unrecoverableLossNeedsPLI() throws {
        let result = try run(frames: 40, lossPercent: 0, unrecoverable: [10], seed: 9)
        #expect(result.plis == 1)
        #expect(result.keyframes == 2)
        let numbers = result.decoded.map(\.number)
        // Frames 0–9 decode; 10 is gone; the frames held behind it are dropped; the keyframe resumes the stream.
        #expect(Array(numbers.prefix(10)) == Array(0..<10))
        let resumed = try #require(numbers.dropFirst(10).first)
        #expect(resumed > 10)
        #expect(Array(numbers.dropFirst(10)) == Array(resumed..<40))
        #expect(result.decoded.allSatisfy { $0.psnr >= Self.psnrFloor })
    }

    @Test("keyframe on request, bitrate change while running")
    func keyframeAndBitrate() throws {
        let encoder = try VP8Encoder(.init(width: Self.width, height: Self.height, bitrateKbps: 1_500, framesPerSecond: 30))
        var sizesHigh: [Int] = [], sizesLow: [Int] = []
        for number in 0..<60 {
            if number == 30 {
                try encoder.setBitrate(kbps: 150)
                #expect(encoder.configuration.bitrateKbps == 150)
            }
            if number == 45 { encoder.requestKeyframe() }
            let frame = try SyntheticMedia.videoFrame(number: number, width: Self.width, height: Self.height)
            let encoded = try #require(try encoder.encode(frame, timestamp: UInt32(number * 3000)))
            #expect(encoded.isKeyframe == (number == 0 || number == 45))
            if (10..<30).contains(number) { sizesHigh.append(encoded.data.readableBytes) }
            if (35..<45).contains(number) { sizesLow.append(encoded.data.readableBytes) }
        }
        let high = Double(sizesHigh.reduce(0, +)) / Double(sizesHigh.count)
        let low = Double(sizesLow.reduce(0, +)) / Double(sizesLow.count)
        print("VP8 mean frame size at 1500 kb/s: \(Int(high)) B, after lowering to 150 kb/s: \(Int(low)) B")
        #expect(low < high / 2)
        #expect(throws: CodecError.self) { try encoder.setBitrate(kbps: 0) }
    }

    @Test("screen-content mode: static desktop frames cost little and decode sharply")
    func screenContent() throws {
        let width = 640, height = 360
        let encoder = try VP8Encoder(.init(width: width, height: height, bitrateKbps: 1_000, framesPerSecond: 15, content: .screen))
        let decoder = try VP8Decoder()
        // A "desktop": white background, dark text-like strokes.
        var y = [UInt8](repeating: 235, count: width * height)
        for row in stride(from: 20, to: height - 20, by: 14) {
            for column in 20..<(width - 20) where (column / 3 + row) % 7 < 3 { y[row * width + column] = 16; y[(row + 1) * width + column] = 16 }
        }
        let chroma = [UInt8](repeating: 128, count: (width / 2) * (height / 2))
        let desktop = try VideoFrame(width: width, height: height, y: y, u: chroma, v: chroma)
        var sizes: [Int] = []
        var lastPSNR = 0.0
        for number in 0..<20 {
            guard let encoded = try encoder.encode(desktop, timestamp: UInt32(number * 6000)) else { continue }
            sizes.append(encoded.data.readableBytes)
            if let picture = try decoder.decode(encoded.data) { lastPSNR = picture.lumaPSNR(against: desktop) ?? 0 }
        }
        print("VP8 screen mode 640x360: keyframe \(sizes.first ?? 0) B, settled static frames \(sizes.suffix(5).reduce(0, +) / 5) B mean, PSNR \(String(format: "%.1f", lastPSNR)) dB")
        #expect(sizes.count >= 15)
        // Once the rate control has refined the picture, an unchanged desktop costs a fraction of the keyframe.
        let settled = sizes.suffix(5)
        #expect(settled.reduce(0, +) / settled.count < sizes[0] / 8)
        #expect(lastPSNR > 40)
    }

    @Test("bad input: wrong frame size, a corrupt bitstream")
    func badInput() throws {
        let encoder = try VP8Encoder(.init(width: 160, height: 120))
        expectError(CodecError.Code.invalidArgument) { _ = try encoder.encode(try VideoFrame(width: 320, height: 240), timestamp: 0) }
        expectError(CodecError.Code.invalidArgument) { _ = try VP8Encoder(.init(width: 8, height: 8)) }
        expectError(CodecError.Code.invalidArgument) { _ = try VideoFrame(width: 4, height: 4, y: [1], u: [], v: []) }
        let decoder = try VP8Decoder()
        expectError(CodecError.Code.codecFailure) { _ = try decoder.decode(ByteBuffer(bytes: [0x00, 0x01, 0x02, 0x03, 0x04])) }
    }
}
