/// Synthetic camera video: a moving test pattern with the frame number and the send time drawn into
/// each frame as a ``TestPatternCode``, so that a receiver can check continuity and measure latency
/// from the decoded pictures alone.
///
/// The picture below the code band is a diagonal luma ramp that slides each frame, a bright box
/// that bounces across it, and colour bars that drift: enough motion and detail to exercise the
/// encoder's inter prediction, cheap enough to generate 1080p in real time.
public struct TestPatternVideoSource: Sendable {
    /// Width and height in pixels.
    public let width: Int
    public let height: Int
    /// Frames per second the source is meant to be read at.
    public let framesPerSecond: Int
    /// The number the next frame gets.
    public private(set) var nextFrameNumber: UInt32 = 0

    /// Creates a source.
    ///
    /// - Throws: ``CodecError`` `.invalidArgument` when the size cannot carry the code or is odd-sized.
    public init(width: Int, height: Int, framesPerSecond: Int = 30) throws(CodecError) {
        guard TestPatternCode.fits(width: width, height: height), width <= 16384, height <= 16384 else {
            throw CodecError(.invalidArgument, "test pattern needs at least 128×\(TestPatternCode.bandHeight(width: 128) + 8) pixels, got \(width)×\(height)")
        }
        guard (1...240).contains(framesPerSecond) else {
            throw CodecError(.invalidArgument, "test pattern frame rate must be 1–240, got \(framesPerSecond)")
        }
        self.width = width
        self.height = height
        self.framesPerSecond = framesPerSecond
    }

    /// The RTP timestamp (90 kHz) of frame `number` at this source's frame rate.
    public func rtpTimestamp(of number: UInt32) -> UInt32 {
        UInt32(truncatingIfNeeded: UInt64(number) * 90_000 / UInt64(framesPerSecond))
    }

    /// Produces the next frame, stamped with `sendTimeMilliseconds`.
    public mutating func nextFrame(sendTimeMilliseconds: UInt64) -> VideoFrame {
        let number = nextFrameNumber
        nextFrameNumber &+= 1
        // The size was checked when the source was created, so drawing cannot fail.
        return (try? Self.picture(number: number, width: width, height: height, sendTimeMilliseconds: sendTimeMilliseconds))
            ?? Self.blank(width: width, height: height)
    }

    private static func blank(width: Int, height: Int) -> VideoFrame {
        let chroma = ((width + 1) / 2) * ((height + 1) / 2)
        return VideoFrame(unchecked: width, height, [UInt8](repeating: 16, count: width * height),
                          [UInt8](repeating: 128, count: chroma), [UInt8](repeating: 128, count: chroma))
    }

    /// The picture of frame `number`, the same every time it is asked for (a receiver's reference for PSNR).
    ///
    /// - Throws: ``CodecError`` `.invalidArgument` when the size cannot carry the ``TestPatternCode``.
    public static func picture(number: UInt32, width: Int, height: Int, sendTimeMilliseconds: UInt64) throws(CodecError) -> VideoFrame {
        guard TestPatternCode.fits(width: width, height: height), width <= 16384, height <= 16384 else {
            throw CodecError(.invalidArgument, "test pattern needs at least 128×\(TestPatternCode.bandHeight(width: 128) + 8) pixels, got \(width)×\(height)")
        }
        let n = Int(number)
        var y = [UInt8](repeating: 0, count: width * height)
        y.withUnsafeMutableBufferPointer { plane in
            for row in 0..<height {
                let base = row * width
                let offset = 2 * row + 3 * n
                for column in 0..<width {
                    let t = (column + offset) & 511
                    let ramp = t < 256 ? t : 511 - t
                    plane[base + column] = UInt8(40 + ramp * 150 / 255)
                }
            }
            // A box that bounces between the edges.
            let box = max(8, min(width, height) / 6)
            let spanX = max(1, width - box)
            let spanY = max(1, height - box)
            let bx = Self.bounce(n * 4, span: spanX)
            let by = Self.bounce(n * 3, span: spanY)
            for row in by..<min(height, by + box) {
                for column in bx..<min(width, bx + box) { plane[row * width + column] = 225 }
            }
        }
        let chromaWidth = (width + 1) / 2
        let chromaHeight = (height + 1) / 2
        var u = [UInt8](repeating: 128, count: chromaWidth * chromaHeight)
        var v = u
        let bars: [(UInt8, UInt8)] = [(128, 128), (44, 142), (156, 44), (72, 58), (184, 198), (212, 114), (100, 212), (128, 128)]
        for row in 0..<chromaHeight {
            for column in 0..<chromaWidth {
                let bar = ((column + n) * bars.count / max(chromaWidth, 1)) % bars.count
                u[row * chromaWidth + column] = bars[bar].0
                v[row * chromaWidth + column] = bars[bar].1
            }
        }
        var frame = try VideoFrame(width: width, height: height, y: y, u: u, v: v)
        try TestPatternCode(frameNumber: number, sendTimeMilliseconds: sendTimeMilliseconds).draw(into: &frame)
        return frame
    }

    private static func bounce(_ position: Int, span: Int) -> Int {
        let period = 2 * span
        let phase = position % period
        return phase < span ? phase : period - phase
    }
}
