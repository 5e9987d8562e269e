import NIOCore

/// Reads 16-bit PCM from a WAV file in frames, for instance to send a recording as a call's audio.
public final class WAVFileReader {
    /// The file's format and data size.
    public let header: WAVHeader
    private let file: MediaFileReader
    private var remaining: Int

    /// Opens a file and reads its header.
    ///
    /// - Throws: ``CodecError`` `.io` when the file cannot be opened, `.malformed`/`.truncated` for a bad header.
    public init(path: String) throws(CodecError) {
        file = try MediaFileReader(path: path)
        var wanted = 4_096
        while true {
            let complete = try file.ensure(wanted)
            if let header = try WAVHeader.parse(&file.buffer) {
                self.header = header
                break
            }
            guard complete else { throw CodecError(.truncated, "WAV file \(path) ends before its data chunk") }
            wanted *= 2
        }
        remaining = Int(header.dataSize)
    }

    /// The next `samplesPerChannel` samples per channel, interleaved; fewer at the end of the file,
    /// `nil` after it.
    public func read(samplesPerChannel: Int) throws(CodecError) -> [Int16]? {
        let frameBytes = Int(header.channels) * 2
        let wanted = min(samplesPerChannel * frameBytes, remaining - remaining % frameBytes)
        guard wanted > 0 else { return nil }
        _ = try file.ensure(wanted)
        let available = min(wanted, file.buffer.readableBytes - file.buffer.readableBytes % frameBytes)
        guard available > 0 else { return nil }
        var pcm = [Int16]()
        pcm.reserveCapacity(available / 2)
        for _ in 0..<(available / 2) {
            if let sample = file.buffer.readInteger(endianness: .little, as: Int16.self) { pcm.append(sample) }
        }
        remaining -= available
        return pcm
    }
}
