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

    /// The frame rate, which is also the time base (1/fps), as libvpx's tools write IVF: ffmpeg
    /// reads the header's frame count as the duration in time-base units.
    public let framesPerSecond: Int

    /// Creates the file (replacing any) and writes the header.
    ///
    /// - Throws: ``CodecError`` `.io` when the file cannot be created, `.invalidArgument` for a size
    ///   above 65535 or a frame rate outside 1–240.
    public init(path: String, width: Int, height: Int, framesPerSecond: Int = 30) throws(CodecError) {
        guard (1...Int(UInt16.max)).contains(width), (1...Int(UInt16.max)).contains(height), (1...240).contains(framesPerSecond) else {
            throw CodecError(.invalidArgument, "IVF needs a frame size within 16 bits and 1–240 fps, got \(width)×\(height) at \(framesPerSecond)")
        }
        self.framesPerSecond = framesPerSecond
        header = IVFHeader(width: UInt16(width), height: UInt16(height), timeBaseDenominator: UInt32(framesPerSecond), timeBaseNumerator: 1)
        file = try MediaFileWriter(path: path)
        var bytes = ByteBuffer()
        header.write(into: &bytes)
        try file.write(bytes)
    }

    /// Appends one compressed frame with its RTP timestamp (90 kHz, RFC 7741 §6.1); presentation
    /// times count frames from the first one.
    public func write(frame: ByteBuffer, timestamp: UInt32) throws(CodecError) {
        let first = firstTimestamp ?? timestamp
        firstTimestamp = first
        var bytes = ByteBuffer()
        bytes.reserveCapacity(IVFHeader.frameHeaderSize + frame.readableBytes)
        bytes.writeMultipleIntegers(UInt32(frame.readableBytes), UInt64((Double(timestamp &- first) * Double(framesPerSecond) / Double(VP8Encoder.clockRate)).rounded()), endianness: .little)
        var data = frame
        bytes.writeBuffer(&data)
        try file.write(bytes)
        frameCount += 1
    }

    /// Sets the frame size the header states, for a stream whose size is known only once its first
    /// keyframe decodes; it is written when the file is closed.
    public func setFrameSize(width: Int, height: Int) {
        guard let width = UInt16(exactly: width), let height = UInt16(exactly: height), width > 0, height > 0 else { return }
        header.width = width
        header.height = height
    }

    /// Writes the frame count into the header and closes the file.
    public func close() throws(CodecError) {
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
