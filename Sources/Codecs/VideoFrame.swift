/// A raw video picture in I420 (YUV 4:2:0 planar, BT.601 limited range): what sources produce,
/// the VP8 encoder takes and the decoder returns.
public struct VideoFrame: Hashable, Sendable {
    /// Width and height in pixels.
    public let width: Int
    public let height: Int
    /// The luma plane, `width × height` bytes, row by row.
    public var y: [UInt8]
    /// The chroma planes, `chromaWidth × chromaHeight` bytes each.
    public var u: [UInt8]
    public var v: [UInt8]

    /// Chroma plane dimensions: half the luma's, rounded up.
    public var chromaWidth: Int { (width + 1) / 2 }
    public var chromaHeight: Int { (height + 1) / 2 }

    /// Creates a frame from its planes.
    ///
    /// - Throws: ``CodecError`` `.invalidArgument` when a plane does not match the dimensions.
    public init(width: Int, height: Int, y: [UInt8], u: [UInt8], v: [UInt8]) throws(CodecError) {
        guard width > 0, height > 0, width <= 16384, height <= 16384 else {
            throw CodecError(.invalidArgument, "video frame of \(width)×\(height) is outside 1–16384 pixels per side")
        }
        let chroma = ((width + 1) / 2) * ((height + 1) / 2)
        guard y.count == width * height, u.count == chroma, v.count == chroma else {
            throw CodecError(.invalidArgument, "I420 planes of \(y.count)/\(u.count)/\(v.count) bytes do not match \(width)×\(height)")
        }
        self.width = width
        self.height = height
        self.y = y
        self.u = u
        self.v = v
    }

    /// A frame from planes the caller has sized correctly (internal: sources that computed them).
    init(unchecked width: Int, _ height: Int, _ y: [UInt8], _ u: [UInt8], _ v: [UInt8]) {
        self.width = width
        self.height = height
        self.y = y
        self.u = u
        self.v = v
    }

    /// A frame of one flat colour.
    public init(width: Int, height: Int, y: UInt8 = 16, u: UInt8 = 128, v: UInt8 = 128) throws(CodecError) {
        let chroma = ((width + 1) / 2) * ((height + 1) / 2)
        try self.init(width: width, height: height,
                      y: [UInt8](repeating: y, count: max(width * height, 0)),
                      u: [UInt8](repeating: u, count: max(chroma, 0)),
                      v: [UInt8](repeating: v, count: max(chroma, 0)))
    }

    /// The peak signal-to-noise ratio of this frame's luma against a reference of the same size, in dB;
    /// `.infinity` when they are identical, `nil` when the sizes differ.
    public func lumaPSNR(against reference: VideoFrame) -> Double? {
        guard reference.width == width, reference.height == height else { return nil }
        var squaredError = 0
        for index in y.indices {
            let difference = Int(y[index]) - Int(reference.y[index])
            squaredError += difference * difference
        }
        guard squaredError > 0 else { return .infinity }
        let meanSquaredError = Double(squaredError) / Double(y.count)
        return 10 * log10(255 * 255 / meanSquaredError)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
