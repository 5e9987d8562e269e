import NIOCore

/// The client-to-mixer audio level (RFC 6464 §3): one byte, the voice-activity flag in the top
/// bit and the level in −dBov (0 loudest, 127 silence) in the other seven.
public struct AudioLevel: Hashable, Sendable {
    /// The level in −dBov, 0…127.
    public var level: UInt8
    /// The sender's voice-activity flag, when it sets one (RFC 6464 §3: `vad=on`).
    public var voiceActivity: Bool

    /// Creates a level.
    public init(level: UInt8, voiceActivity: Bool) {
        self.level = min(level, 127)
        self.voiceActivity = voiceActivity
    }

    /// Reads the extension element's data; nil unless it is the one byte RFC 6464 §3 defines.
    /// (Senders with the one-byte header form may pad the element; RFC 6464 §3 allows only 1 byte
    /// of data, and a longer element is read by its first byte, as browsers do.)
    public init?(extensionData data: ByteBuffer) {
        guard data.readableBytes >= 1, let byte = data.getInteger(at: data.readerIndex, as: UInt8.self) else { return nil }
        self.init(level: byte & 0x7F, voiceActivity: byte & 0x80 != 0)
    }

    /// The element's one byte.
    public var byte: UInt8 { (voiceActivity ? 0x80 : 0) | level }
}

/// Who speaks in a forwarded call now, loudest first (for the page's speaker highlight).
public struct ForwardingSpeaker: Hashable, Sendable {
    /// The participant.
    public var participant: String
    /// The loudest level it sent within the hold time, −dBov.
    public var level: UInt8
}
