import NIOCore

extension RTPHeaderExtensionElement {
    /// A `mid` element (RFC 9143 §15) carrying the media section's identification tag.
    public static func mid(id: UInt8, _ mid: String) -> RTPHeaderExtensionElement {
        RTPHeaderExtensionElement(id: id, data: ByteBuffer(string: mid))
    }

    /// An abs-send-time element: the low 6 bits of the seconds and 18 bits of fraction of an NTP time.
    public static func absSendTime(id: UInt8, seconds: Double) -> RTPHeaderExtensionElement {
        let fixed = UInt32((seconds * Double(1 << 18)).rounded(.down).truncatingRemainder(dividingBy: Double(1 << 24)))
        return RTPHeaderExtensionElement(id: id, bytes: [UInt8(fixed >> 16 & 0xFF), UInt8(fixed >> 8 & 0xFF), UInt8(fixed & 0xFF)])
    }

    /// A transport-wide sequence number element (draft-holmer-rmcat-transport-wide-cc-extensions-01 §2).
    public static func transportSequenceNumber(id: UInt8, _ sequence: UInt16) -> RTPHeaderExtensionElement {
        RTPHeaderExtensionElement(id: id, bytes: [UInt8(sequence >> 8), UInt8(sequence & 0xFF)])
    }

    /// RFC 6464 §3: one byte, the voice-activity flag on top of the level in −dBov (0–127).
    public static func audioLevel(id: UInt8, level: UInt8, voiceActivity: Bool) -> RTPHeaderExtensionElement {
        RTPHeaderExtensionElement(id: id, bytes: [(voiceActivity ? 0x80 : 0) | min(level, 127)])
    }

    /// The element's data read as a `mid` string.
    public var midValue: String? {
        data.getString(at: data.readerIndex, length: data.readableBytes)
    }

    /// The element's data read as abs-send-time (24-bit 6.18 fixed point), in seconds modulo 64.
    public var absSendTimeSeconds: Double? {
        guard data.readableBytes == 3, let bytes = data.getBytes(at: data.readerIndex, length: 3) else { return nil }
        let fixed = UInt32(bytes[0]) << 16 | UInt32(bytes[1]) << 8 | UInt32(bytes[2])
        return Double(fixed) / Double(1 << 18)
    }

    /// The element's data read as a transport-wide sequence number.
    public var transportSequenceNumberValue: UInt16? {
        guard data.readableBytes == 2 else { return nil }
        return data.getInteger(at: data.readerIndex, as: UInt16.self)
    }
}
