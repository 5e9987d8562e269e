import NIOCore

/// Records PCM audio into a 16-bit WAV file that any player and ffprobe read. The chunk sizes are
/// patched when the file is closed.
public final class WAVFileWriter {
    /// The file's path.
    public var path: String { file.path }
    /// Samples per channel written so far.
    public private(set) var samplesPerChannel = 0
    private let file: MediaFileWriter
    private var header: WAVHeader

    /// Creates the file (replacing any) for `channels` channels at `sampleRate`.
    ///
    /// - Throws: ``CodecError`` `.io` when the file cannot be created, `.invalidArgument` for odd settings.
    public init(path: String, sampleRate: Int = OpusAudioEncoder.sampleRate, channels: Int = 1) throws(CodecError) {
        guard (1...8).contains(channels), (1_000...384_000).contains(sampleRate) else {
            throw CodecError(.invalidArgument, "WAV needs 1–8 channels and 1–384 kHz, got \(channels) at \(sampleRate) Hz")
        }
        header = WAVHeader(sampleRate: UInt32(sampleRate), channels: UInt16(channels))
        file = try MediaFileWriter(path: path)
        var bytes = ByteBuffer()
        header.write(into: &bytes)
        try file.write(bytes)
    }

    /// Appends interleaved samples.
    ///
    /// - Throws: ``CodecError`` `.invalidArgument` when the count is not a multiple of the channels,
    ///   `.io` when writing fails or the file would exceed 4 GiB.
    public func write(_ pcm: [Int16]) throws(CodecError) {
        let channels = Int(header.channels)
        guard pcm.count % channels == 0 else {
            throw CodecError(.invalidArgument, "\(pcm.count) samples are not whole frames of \(channels) channels")
        }
        guard UInt64(header.dataSize) + UInt64(pcm.count * 2) < UInt64(UInt32.max) - 64 else {
            throw CodecError(.io, "WAV file \(path) would exceed 4 GiB")
        }
        var bytes = ByteBuffer()
        bytes.reserveCapacity(pcm.count * 2)
        for sample in pcm { bytes.writeInteger(sample, endianness: .little) }
        try file.write(bytes)
        header.dataSize += UInt32(pcm.count * 2)
        samplesPerChannel += pcm.count / channels
    }

    /// Writes the final sizes into the header and closes the file.
    public func close() throws(CodecError) {
        guard !file.isClosed else { return }
        var bytes = ByteBuffer()
        header.write(into: &bytes)
        try file.patch(bytes, at: 0)
        try file.close()
    }

    deinit {
        try? close()
    }
}
