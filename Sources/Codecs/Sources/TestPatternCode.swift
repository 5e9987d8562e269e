/// Machine-readable data drawn into a picture's luma as black and white blocks, so that a receiver
/// can read back, from a decoded frame, which frame it is and when it was sent.
///
/// Layout: three rows of 32 square cells across the top of the frame, one bit per cell (white =
/// 1), least significant bit first: the 32-bit frame number, the 48-bit send time in milliseconds,
/// and a CRC-16/CCITT of those 80 bits. Cells are `width / 32` pixels (even, at least 4) and the
/// reader samples only their inner half, so VP8's blocking and ringing at moderate bitrates do not
/// flip a bit; the CRC rejects a frame whose band was damaged anyway.
public struct TestPatternCode: Hashable, Sendable {
    /// The frame's number, counted by the source from 0.
    public var frameNumber: UInt32
    /// The send time in milliseconds (48 bits kept), on the sender's clock.
    public var sendTimeMilliseconds: UInt64

    /// Cells per row.
    static let cellsPerRow = 32
    /// Rows of cells.
    static let rows = 3
    static let black: UInt8 = 16
    static let white: UInt8 = 235

    /// Creates a code.
    public init(frameNumber: UInt32, sendTimeMilliseconds: UInt64) {
        self.frameNumber = frameNumber
        self.sendTimeMilliseconds = sendTimeMilliseconds & 0xFFFF_FFFF_FFFF
    }

    /// The side of one cell for a frame `width` pixels wide.
    public static func cellSize(width: Int) -> Int {
        max(4, (width / cellsPerRow) & ~1)
    }

    /// The height of the band the code occupies at the top of a frame `width` pixels wide.
    public static func bandHeight(width: Int) -> Int {
        cellSize(width: width) * rows
    }

    /// Whether a frame of this size can carry the code.
    public static func fits(width: Int, height: Int) -> Bool {
        width >= cellsPerRow * 4 && height >= bandHeight(width: width) + 8
    }

    private var bits: [Bool] {
        var payload: [Bool] = []
        payload.reserveCapacity(96)
        for bit in 0..<32 { payload.append(frameNumber >> UInt32(bit) & 1 == 1) }
        for bit in 0..<48 { payload.append(sendTimeMilliseconds >> UInt64(bit) & 1 == 1) }
        let crc = Self.crc16(payload)
        for bit in 0..<16 { payload.append(crc >> UInt16(bit) & 1 == 1) }
        return payload
    }

    /// CRC-16/CCITT (polynomial 0x1021, initial 0xFFFF) over bits, first bit first.
    static func crc16(_ bits: [Bool]) -> UInt16 {
        var crc: UInt16 = 0xFFFF
        for bit in bits {
            let feedback = (crc >> 15 & 1 == 1) != bit
            crc <<= 1
            if feedback { crc ^= 0x1021 }
        }
        return crc
    }

    /// Draws the code into the luma plane of `frame`.
    ///
    /// - Throws: ``CodecError`` `.invalidArgument` when the frame is too small for the band.
    public func draw(into frame: inout VideoFrame) throws(CodecError) {
        guard Self.fits(width: frame.width, height: frame.height) else {
            throw CodecError(.invalidArgument, "a \(frame.width)×\(frame.height) frame is too small for the test pattern code (at least 128 pixels wide)")
        }
        let cell = Self.cellSize(width: frame.width)
        let width = frame.width
        // Row by row with pointer fills: a generic `replaceSubrange` per cell row cost a debug
        // build's peer half of its CPU.
        frame.y.withUnsafeMutableBufferPointer { plane in
            let pixels = plane.baseAddress!
            for (index, bit) in bits.enumerated() {
                let value = bit ? Self.white : Self.black
                let top = (index / Self.cellsPerRow) * cell
                let left = (index % Self.cellsPerRow) * cell
                for row in top..<(top + cell) { (pixels + row * width + left).update(repeating: value, count: cell) }
            }
        }
        // Neutral chroma under the band keeps the cells' edges sharp after 4:2:0 subsampling.
        let count = min(frame.chromaHeight, (Self.bandHeight(width: width) + 1) / 2) * frame.chromaWidth
        frame.u.withUnsafeMutableBufferPointer { $0.baseAddress!.update(repeating: 128, count: count) }
        frame.v.withUnsafeMutableBufferPointer { $0.baseAddress!.update(repeating: 128, count: count) }
    }

    /// Reads a code back from a (possibly compressed and decoded) frame.
    ///
    /// - Returns: the code, or `nil` when the frame is too small or the CRC does not match.
    public init?(reading frame: VideoFrame) {
        guard Self.fits(width: frame.width, height: frame.height) else { return nil }
        let cell = Self.cellSize(width: frame.width)
        let inset = cell / 4
        var bits: [Bool] = []
        bits.reserveCapacity(96)
        for index in 0..<(Self.cellsPerRow * Self.rows) {
            let top = (index / Self.cellsPerRow) * cell + inset
            let left = (index % Self.cellsPerRow) * cell + inset
            var sum = 0
            var count = 0
            for row in top..<(top + cell - 2 * inset) {
                for column in left..<(left + cell - 2 * inset) {
                    sum += Int(frame.y[row * frame.width + column])
                    count += 1
                }
            }
            bits.append(sum / max(count, 1) > Int(Self.black + Self.white) / 2)
        }
        var number: UInt32 = 0
        for bit in 0..<32 where bits[bit] { number |= 1 << UInt32(bit) }
        var time: UInt64 = 0
        for bit in 0..<48 where bits[32 + bit] { time |= 1 << UInt64(bit) }
        var crc: UInt16 = 0
        for bit in 0..<16 where bits[80 + bit] { crc |= 1 << UInt16(bit) }
        guard Self.crc16(Array(bits[0..<80])) == crc else { return nil }
        self.init(frameNumber: number, sendTimeMilliseconds: time)
    }
}
