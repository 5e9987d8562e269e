import NIOCore

/// A TURN ChannelData message (RFC 8656 §12.4): a 4-byte header (channel number, length)
/// followed by application data.
public struct ChannelData: Sendable {
    /// RFC 8656 §12 narrowed channel numbers to 0x4000–0x4FFF, but RFC 5766 clients (coturn's
    /// among them) still pick from 0x4000–0x7FFF; a server accepts both. RFC 7983 leaves first
    /// bytes 80–127 unassigned, so the wider range does not collide with DTLS or RTP.
    public static let validChannels: ClosedRange<UInt16> = 0x4000...0x7FFF

    public var channel: UInt16
    public var data: ByteBuffer

    public init(channel: UInt16, data: ByteBuffer) {
        self.channel = channel
        self.data = data
    }

    /// RFC 7983 §7: a first byte of 64–79 is TURN ChannelData (64–127 with RFC 5766 channels).
    public static func looksLikeChannelData(_ buffer: ByteBuffer) -> Bool {
        guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return false }
        return (64...127).contains(first)
    }

    /// Parses one ChannelData message. Over UDP the padding may be absent and trailing bytes
    /// are ignored (RFC 8656 §12.5); the data is a zero-copy slice of `buffer`.
    public init(parsing buffer: ByteBuffer) throws(STUNError) {
        guard let (channel, length) = buffer.getMultipleIntegers(at: buffer.readerIndex, as: (UInt16, UInt16).self) else {
            throw STUNError(.truncated, "ChannelData shorter than its 4-byte header")
        }
        guard Self.validChannels.contains(channel) else {
            throw STUNError(.badChannelNumber, "channel 0x\(String(channel, radix: 16)) is outside 0x4000-0x7FFF")
        }
        guard buffer.readableBytes - 4 >= Int(length) else {
            throw STUNError(.truncated, "ChannelData says \(length) bytes but carries \(buffer.readableBytes - 4)")
        }
        self.channel = channel
        self.data = buffer.getSlice(at: buffer.readerIndex + 4, length: Int(length))!
    }

    /// Writes the message; `padded` adds the zero padding to a multiple of 4 that stream
    /// transports require (RFC 8656 §12.5).
    public func encode(padded: Bool, allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 4 + data.readableBytes + 3)
        Self.write(channel: channel, data: data, padded: padded, into: &buffer)
        return buffer
    }

    /// Appends a ChannelData message for `data` to `buffer` without building a value first.
    public static func write(channel: UInt16, data: ByteBuffer, padded: Bool, into buffer: inout ByteBuffer) {
        buffer.writeMultipleIntegers(channel, UInt16(data.readableBytes))
        var data = data
        buffer.writeBuffer(&data)
        if padded {
            let padding = (4 - buffer.writerIndex % 4) % 4
            if padding > 0 { buffer.writeRepeatingByte(0, count: padding) }
        }
    }
}
