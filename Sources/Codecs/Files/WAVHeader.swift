import NIOCore

/// The header of a RIFF/WAVE file with 16-bit PCM (the "fmt " and "data" chunks of the RIFF WAVE
/// format, WAVE_FORMAT_PCM = 1), as written and read by meshnode.
public struct WAVHeader: Hashable, Sendable {
    /// Samples per second.
    public var sampleRate: UInt32
    /// Interleaved channels.
    public var channels: UInt16
    /// Bytes of sample data.
    public var dataSize: UInt32

    /// Bits per sample: always 16.
    public static let bitsPerSample: UInt16 = 16
    /// Size of the canonical header written: RIFF (12) + fmt (24) + data chunk header (8).
    public static let size = 44

    /// Creates a header.
    public init(sampleRate: UInt32, channels: UInt16, dataSize: UInt32 = 0) {
        self.sampleRate = sampleRate
        self.channels = channels
        self.dataSize = dataSize
    }

    /// Appends the canonical 44-byte header.
    public func write(into buffer: inout ByteBuffer) {
        let blockAlign = channels * Self.bitsPerSample / 8
        buffer.writeString("RIFF")
        buffer.writeInteger(UInt32(36) &+ dataSize, endianness: .little)
        buffer.writeString("WAVEfmt ")
        buffer.writeMultipleIntegers(UInt32(16), UInt16(1), channels, sampleRate, sampleRate * UInt32(blockAlign), blockAlign, Self.bitsPerSample,
                                     endianness: .little)
        buffer.writeString("data")
        buffer.writeInteger(dataSize, endianness: .little)
    }

    /// Parses the RIFF header and chunks up to the start of the sample data, skipping chunks it
    /// does not know ("LIST", "fact"…). On return the reader index is at the first sample.
    ///
    /// - Returns: `nil` when more bytes are needed to reach the data chunk.
    /// - Throws: ``CodecError`` `.malformed` for a file that is not RIFF/WAVE, or not 16-bit PCM.
    public static func parse(_ buffer: inout ByteBuffer) throws(CodecError) -> WAVHeader? {
        var cursor = buffer
        guard let riff = cursor.readString(length: 4), cursor.readInteger(endianness: .little, as: UInt32.self) != nil,
              let wave = cursor.readString(length: 4)
        else { return nil }
        guard riff == "RIFF", wave == "WAVE" else {
            throw CodecError(.malformed, "not a WAV file: starts with \(riff.debugDescription)…\(wave.debugDescription)")
        }
        var format: (channels: UInt16, rate: UInt32)?
        while true {
            guard let id = cursor.readString(length: 4), let size = cursor.readInteger(endianness: .little, as: UInt32.self) else { return nil }
            if id == "data" {
                guard let format else {
                    throw CodecError(.malformed, "WAV data chunk comes before its fmt chunk")
                }
                buffer = cursor
                return WAVHeader(sampleRate: format.rate, channels: format.channels, dataSize: size)
            }
            guard var chunk = cursor.readSlice(length: Int(size) + Int(size & 1)) else { return nil }
            guard id == "fmt " else { continue }
            guard let (tag, channels, rate, _, _, bits) = chunk.readMultipleIntegers(
                endianness: .little, as: (UInt16, UInt16, UInt32, UInt32, UInt16, UInt16).self)
            else {
                throw CodecError(.malformed, "WAV fmt chunk of \(size) bytes is too short")
            }
            // WAVE_FORMAT_EXTENSIBLE (0xFFFE) with a PCM subformat is accepted as PCM too.
            guard tag == 1 || tag == 0xFFFE, bits == Self.bitsPerSample, channels > 0, rate > 0 else {
                throw CodecError(.malformed, "WAV format \(tag) with \(bits)-bit samples; only 16-bit PCM is supported")
            }
            format = (channels, rate)
        }
    }
}
