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
        // Every row is a window onto one ramp line (the ramp repeats every 512 pixels), and the
        // colour bars are the same in every chroma row: whole rows are copied, not computed per
        // pixel, so a debug build draws 640×360 at 30 fps without a core of its own.
        var ramp = [UInt8](repeating: 0, count: 512 + width)
        for index in ramp.indices {
            let t = index & 511
            ramp[index] = UInt8(40 + (t < 256 ? t : 511 - t) * 150 / 255)
        }
        var y = [UInt8](repeating: 0, count: width * height)
        y.withUnsafeMutableBufferPointer { plane in
            let pixels = plane.baseAddress!
            ramp.withUnsafeBufferPointer { line in
                for row in 0..<height {
                    (pixels + row * width).update(from: line.baseAddress! + ((2 * row + 3 * n) & 511), count: width)
                }
            }
            // A box that bounces between the edges.
            let box = max(8, min(width, height) / 6)
            let spanX = max(1, width - box)
            let spanY = max(1, height - box)
            let bx = Self.bounce(n * 4, span: spanX)
            let by = Self.bounce(n * 3, span: spanY)
            let boxWidth = min(width, bx + box) - bx
            for row in by..<min(height, by + box) {
                (pixels + row * width + bx).update(repeating: 225, count: boxWidth)
            }
        }
        let chromaWidth = (width + 1) / 2
        let chromaHeight = (height + 1) / 2
        let bars: [(UInt8, UInt8)] = [(128, 128), (44, 142), (156, 44), (72, 58), (184, 198), (212, 114), (100, 212), (128, 128)]
        var uRow = [UInt8](repeating: 128, count: chromaWidth)
        var vRow = uRow
        for column in 0..<chromaWidth {
            let bar = ((column + n) * bars.count / max(chromaWidth, 1)) % bars.count
            uRow[column] = bars[bar].0
            vRow[column] = bars[bar].1
        }
        func plane(_ row: [UInt8]) -> [UInt8] {
            var plane = [UInt8](repeating: 128, count: chromaWidth * chromaHeight)
            plane.withUnsafeMutableBufferPointer { plane in
                row.withUnsafeBufferPointer { line in
                    for r in 0..<chromaHeight { (plane.baseAddress! + r * chromaWidth).update(from: line.baseAddress!, count: chromaWidth) }
                }
            }
            return plane
        }
        let u = plane(uRow)
        let v = plane(vRow)
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
