import Testing
import TestSupport
@testable import Codecs

@Suite("Synthetic sources: test pattern code and tones")
struct TestPatternTests {
    @Test("the frame number and send time survive VP8 at a low bitrate and are read back")
    func codeSurvivesCompression() throws {
        let encoder = try VP8Encoder(.init(width: 320, height: 240, bitrateKbps: 150))
        let decoder = try VP8Decoder()
        var source = try TestPatternVideoSource(width: 320, height: 240)
        var read: [TestPatternCode] = []
        for index in 0..<60 {
            let sendTime: UInt64 = 1_700_000_000_000 + UInt64(index) * 33
            let picture = source.nextFrame(sendTimeMilliseconds: sendTime)
            #expect(TestPatternCode(reading: picture) == TestPatternCode(frameNumber: UInt32(index), sendTimeMilliseconds: sendTime))
            guard let encoded = try encoder.encode(picture, timestamp: source.rtpTimestamp(of: UInt32(index))),
                  let decoded = try decoder.decode(encoded.data) else { continue }
            if let code = TestPatternCode(reading: decoded) { read.append(code) }
        }
        #expect(read.map(\.frameNumber) == Array(0..<60))
        #expect(read.last?.sendTimeMilliseconds == 1_700_000_000_000 + 59 * 33)
    }

    @Test("a damaged band fails the CRC instead of giving a wrong number")
    func damagedBandRejected() throws {
        var picture = try TestPatternVideoSource.picture(number: 1234, width: 256, height: 144, sendTimeMilliseconds: 99)
        #expect(TestPatternCode(reading: picture)?.frameNumber == 1234)
        let cell = TestPatternCode.cellSize(width: 256)
        // Flip bit 3 of the frame number.
        for row in 0..<cell { for column in (3 * cell)..<(4 * cell) { picture.y[row * 256 + column] = 255 - picture.y[row * 256 + column] } }
        #expect(TestPatternCode(reading: picture) == nil)
        expectError(CodecError.Code.invalidArgument) { _ = try TestPatternVideoSource(width: 64, height: 64) }
    }

    /// The picture drawn by row copies is the one its description defines pixel by pixel: the
    /// sliding ramp, the bouncing box, the drifting bars and the code band (receivers compare
    /// decoded pictures with it for PSNR, so it must not change).
    @Test("the test pattern's pixels follow its definition", arguments: [(640, 360, 0), (640, 360, 77), (1280, 720, 513), (130, 100, 5)])
    func patternPixels(width: Int, height: Int, number: UInt32) throws {
        let frame = try TestPatternVideoSource.picture(number: number, width: width, height: height, sendTimeMilliseconds: 1234)
        let n = Int(number)
        let box = max(8, min(width, height) / 6)
        func bounce(_ position: Int, _ span: Int) -> Int { let phase = position % (2 * span); return phase < span ? phase : 2 * span - phase }
        let bx = bounce(n * 4, max(1, width - box)), by = bounce(n * 3, max(1, height - box))
        let band = TestPatternCode.bandHeight(width: width)
        var mismatches = 0
        for row in band..<height {
            for column in 0..<width {
                let t = (column + 2 * row + 3 * n) & 511
                var expected = UInt8(40 + (t < 256 ? t : 511 - t) * 150 / 255)
                if (bx..<bx + box).contains(column), (by..<by + box).contains(row) { expected = 225 }
                if frame.y[row * width + column] != expected { mismatches += 1 }
            }
        }
        #expect(mismatches == 0)
        let bars: [(UInt8, UInt8)] = [(128, 128), (44, 142), (156, 44), (72, 58), (184, 198), (212, 114), (100, 212), (128, 128)]
        let chromaWidth = (width + 1) / 2
        for row in ((band + 1) / 2)..<((height + 1) / 2) {
            for column in 0..<chromaWidth {
                let bar = bars[((column + n) * bars.count / chromaWidth) % bars.count]
                if frame.u[row * chromaWidth + column] != bar.0 || frame.v[row * chromaWidth + column] != bar.1 { mismatches += 1 }
            }
        }
        #expect(mismatches == 0)
        #expect(TestPatternCode(reading: frame) == TestPatternCode(frameNumber: number, sendTimeMilliseconds: 1234))
    }

    @Test("tones: the requested frequency, per channel")
    func tones() throws {
        var source = try ToneAudioSource(channels: [[.init(frequency: 1000, amplitude: 0.5)], [.init(frequency: 250, amplitude: 0.5)]])
        let frame = source.nextFrame()
        #expect(frame.count == 960 * 2)
        // Zero crossings in 20 ms: 2 per cycle → 40 for 1 kHz, 10 for 250 Hz.
        func crossings(_ channel: Int) -> Int {
            let samples = stride(from: channel, to: frame.count, by: 2).map { frame[$0] }
            return zip(samples, samples.dropFirst()).filter { ($0 < 0) != ($1 < 0) }.count
        }
        #expect((39...41).contains(crossings(0)))
        #expect((9...11).contains(crossings(1)))
        #expect(frame.map { abs(Int($0)) }.max()! > 16_000)
        expectError(CodecError.Code.invalidArgument) { _ = try ToneAudioSource(channels: []) }
    }
}
