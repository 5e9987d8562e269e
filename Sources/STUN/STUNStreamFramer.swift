import NIOCore

/// One frame cut from a TURN stream (TCP or TLS): a whole STUN message or a whole ChannelData
/// message, as a slice of the stream's bytes.
public enum STUNFrame: Sendable {
    case stun(ByteBuffer)
    case channelData(ByteBuffer)
}

/// Cuts a byte stream into STUN messages and ChannelData messages (RFC 8656 §12.5: over
/// stream transports both are length-delimited, ChannelData padded to a multiple of 4).
///
/// Incremental: `next(from:)` returns nil until a whole frame is buffered, and throws when the
/// stream cannot be STUN or ChannelData, after which the connection must be closed.
public struct STUNStreamFramer: Sendable {
    public init() {}

    public mutating func next(from buffer: inout ByteBuffer) throws(STUNError) -> STUNFrame? {
        guard let (first, length) = buffer.getMultipleIntegers(at: buffer.readerIndex, as: (UInt16, UInt16).self) else {
            return nil
        }
        switch first >> 14 {
        case 0b00:
            guard length % 4 == 0 else {
                throw STUNError(.badLength, "STUN message length \(length) is not a multiple of 4")
            }
            if buffer.readableBytes >= 8, buffer.getInteger(at: buffer.readerIndex + 4, as: UInt32.self) != STUNMessage.magicCookie {
                throw STUNError(.notSTUN, "stream frame has no STUN magic cookie")
            }
            let total = STUNMessage.headerLength + Int(length)
            guard buffer.readableBytes >= total else { return nil }
            return .stun(buffer.readSlice(length: total)!)
        case 0b01:
            guard ChannelData.validChannels.contains(first) else {
                throw STUNError(.badChannelNumber, "channel 0x\(String(first, radix: 16)) is outside 0x4000-0x7FFF")
            }
            let total = 4 + ((Int(length) + 3) & ~3)
            guard buffer.readableBytes >= total else { return nil }
            return .channelData(buffer.readSlice(length: total)!)
        default:
            throw STUNError(.notSTUN, "stream frame starts with 0x\(String(first >> 8, radix: 16)), neither STUN nor ChannelData")
        }
    }
}
