import NIOCore

/// Reads compressed frames from an IVF file, for instance to send a recorded VP8 stream.
public final class IVFFileReader {
    /// One frame from the file.
    public struct Frame: Hashable, Sendable {
        /// The compressed frame.
        public var data: ByteBuffer
        /// The presentation time in units of the header's time base.
        public var presentationTime: UInt64
    }

    /// The file's header.
    public let header: IVFHeader
    private let file: MediaFileReader

    /// Opens a file and reads its header.
    ///
    /// - Throws: ``CodecError`` `.io` when the file cannot be opened, `.truncated`/`.malformed` for a bad header.
    public init(path: String) throws(CodecError) {
        file = try MediaFileReader(path: path)
        _ = try file.ensure(IVFHeader.size)
        header = try IVFHeader(parsing: &file.buffer)
    }

    /// The next frame, or `nil` at the end of the file.
    ///
    /// - Throws: ``CodecError`` `.truncated` when the file ends inside a frame.
    public func nextFrame() throws(CodecError) -> Frame? {
        guard try file.ensure(IVFHeader.frameHeaderSize) else {
            guard file.buffer.readableBytes == 0 else {
                throw CodecError(.truncated, "IVF file ends inside a frame header")
            }
            return nil
        }
        guard let (size, pts) = file.buffer.getMultipleIntegers(at: file.buffer.readerIndex, endianness: .little, as: (UInt32, UInt64).self) else {
            return nil
        }
        guard size <= 64 << 20 else {
            throw CodecError(.malformed, "IVF frame of \(size) bytes is implausibly large")
        }
        guard try file.ensure(IVFHeader.frameHeaderSize + Int(size)) else {
            throw CodecError(.truncated, "IVF file ends inside a frame of \(size) bytes")
        }
        file.buffer.moveReaderIndex(forwardBy: IVFHeader.frameHeaderSize)
        guard let data = file.buffer.readSlice(length: Int(size)) else { return nil }
        return Frame(data: data, presentationTime: pts)
    }
}
