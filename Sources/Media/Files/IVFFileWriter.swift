import NIOCore

/// Records a VP8 stream into an IVF file that ffmpeg, ffprobe and libvpx's tools play.
///
/// The frame count in the header is patched when the file is closed; a file whose writer was never
/// closed still plays (readers go by the frame headers) but reports zero frames.
public final class IVFFileWriter {
    /// The file's path.
    public var path: String { file.path }
    /// Frames written so far.
    public private(set) var frameCount: UInt32 = 0
    private let file: MediaFileWriter
    private var header: IVFHeader
    private var firstTimestamp: UInt32?

    /// Creates the file (replacing any) and writes the header. Timestamps are RTP timestamps, so the
    /// time base is the 90 kHz RTP clock (RFC 7741 §6.1).
    ///
    /// - Throws: ``MediaError`` `.io` when the file cannot be created, `.invalidArgument` for a size above 65535.
    public init(path: String, width: Int, height: Int) throws(MediaError) {
        guard (1...Int(UInt16.max)).contains(width), (1...Int(UInt16.max)).contains(height) else {
            throw MediaError(.invalidArgument, "IVF frame size \(width)×\(height) does not fit 16 bits")
        }
        header = IVFHeader(width: UInt16(width), height: UInt16(height))
        file = try MediaFileWriter(path: path)
        var bytes = ByteBuffer()
        header.write(into: &bytes)
        try file.write(bytes)
    }

    /// Appends one compressed frame with its RTP timestamp; presentation times count from the first frame.
    public func write(frame: ByteBuffer, timestamp: UInt32) throws(MediaError) {
        let first = firstTimestamp ?? timestamp
        firstTimestamp = first
        var bytes = ByteBuffer()
        bytes.reserveCapacity(IVFHeader.frameHeaderSize + frame.readableBytes)
        bytes.writeMultipleIntegers(UInt32(frame.readableBytes), UInt64(timestamp &- first), endianness: .little)
        var data = frame
        bytes.writeBuffer(&data)
        try file.write(bytes)
        frameCount += 1
    }

    /// Writes the frame count into the header and closes the file.
    public func close() throws(MediaError) {
        guard !file.isClosed else { return }
        header.frameCount = frameCount
        var bytes = ByteBuffer()
        header.write(into: &bytes)
        try file.patch(bytes, at: 0)
        try file.close()
    }

    deinit {
        try? close()
    }
}
