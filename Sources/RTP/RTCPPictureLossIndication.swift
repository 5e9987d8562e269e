import NIOCore

/// A picture loss indication, RTCP PT 206 FMT 1 (RFC 4585 §6.3.1): the receiver lost decoder
/// state and needs a keyframe.
public struct RTCPPictureLossIndication: Hashable, Sendable {
    static let format: UInt8 = 1

    /// The SSRC of the packet's sender.
    public var senderSSRC: UInt32
    /// The SSRC of the media source that should send a keyframe.
    public var mediaSSRC: UInt32

    /// Creates a PLI.
    public init(senderSSRC: UInt32, mediaSSRC: UInt32) {
        self.senderSSRC = senderSSRC
        self.mediaSSRC = mediaSSRC
    }

    init(parsing body: inout ByteBuffer) throws(RTPError) {
        guard let (sender, media) = body.readMultipleIntegers(as: (UInt32, UInt32).self) else {
            throw RTPError(.truncated, "RTCP PLI is shorter than its 8-byte common feedback header")
        }
        // RFC 4585 §6.3.1: PLI has no FCI; anything after the header is ignored rather than refused,
        // as other implementations do.
        self.init(senderSSRC: sender, mediaSSRC: media)
    }

    func writeBody(into buffer: inout ByteBuffer) {
        buffer.writeMultipleIntegers(senderSSRC, mediaSSRC)
    }
}
