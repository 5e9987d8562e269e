import NIOCore

/// The 32-byte header of an IVF file, the simple container libvpx's tools use for VP8 and VP9
/// streams: "DKIF", version 0, header size 32, the codec FourCC, frame size, time base and frame
/// count, all little-endian. Each frame follows as a 12-byte header (size, 64-bit pts) and its data.
public struct IVFHeader: Hashable, Sendable {
    /// The codec FourCC, "VP80" for VP8.
    public var fourCC: String
    /// Frame width in pixels.
    public var width: UInt16
    /// Frame height in pixels.
    public var height: UInt16
    /// The time base's denominator: pts count units of `timeBaseNumerator / timeBaseDenominator` seconds.
    public var timeBaseDenominator: UInt32
    /// The time base's numerator.
    public var timeBaseNumerator: UInt32
    /// Frames in the file (written last, when the file is closed).
    public var frameCount: UInt32

    /// The header size.
    public static let size = 32
    /// The size of each frame's header.
    public static let frameHeaderSize = 12

    /// Creates a header.
    public init(fourCC: String = "VP80", width: UInt16, height: UInt16, timeBaseDenominator: UInt32 = 90_000, timeBaseNumerator: UInt32 = 1, frameCount: UInt32 = 0) {
        self.fourCC = fourCC
        self.width = width
        self.height = height
        self.timeBaseDenominator = timeBaseDenominator
        self.timeBaseNumerator = timeBaseNumerator
        self.frameCount = frameCount
    }

    /// Parses a header.
    ///
    /// - Throws: ``CodecError`` `.truncated` for fewer than 32 bytes, `.malformed` without the "DKIF" signature.
    public init(parsing buffer: inout ByteBuffer) throws(CodecError) {
        guard let signature = buffer.readString(length: 4),
              let (version, headerSize) = buffer.readMultipleIntegers(endianness: .little, as: (UInt16, UInt16).self),
              let fourCC = buffer.readString(length: 4),
              let (width, height, denominator, numerator, count, _) = buffer.readMultipleIntegers(
                endianness: .little, as: (UInt16, UInt16, UInt32, UInt32, UInt32, UInt32).self)
        else {
            throw CodecError(.truncated, "IVF header is 32 bytes; the file is shorter")
        }
        guard signature == "DKIF", version == 0, headerSize >= 32 else {
            throw CodecError(.malformed, "not an IVF file: signature \(signature.debugDescription), version \(version), header size \(headerSize)")
        }
        guard denominator > 0, numerator > 0 else {
            throw CodecError(.malformed, "IVF time base \(numerator)/\(denominator) has a zero term")
        }
        buffer.moveReaderIndex(forwardBy: min(Int(headerSize) - 32, buffer.readableBytes))
        self.init(fourCC: fourCC, width: width, height: height, timeBaseDenominator: denominator, timeBaseNumerator: numerator, frameCount: count)
    }

    /// Appends the header's wire form.
    public func write(into buffer: inout ByteBuffer) {
        buffer.writeString("DKIF")
        buffer.writeMultipleIntegers(UInt16(0), UInt16(32), endianness: .little)
        let code = Array(fourCC.utf8.prefix(4))
        buffer.writeBytes(code + [UInt8](repeating: 0x20, count: 4 - code.count))
        buffer.writeMultipleIntegers(width, height, timeBaseDenominator, timeBaseNumerator, frameCount, UInt32(0), endianness: .little)
    }
}
