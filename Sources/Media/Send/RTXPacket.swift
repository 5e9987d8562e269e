import NIOCore
import RTP

/// The RTP retransmission payload format (RFC 4588 §4): a retransmitted packet travels in its own
/// stream (its own SSRC, payload type and sequence numbers) and carries the original sequence
/// number (OSN) in front of the original payload.
public enum RTXPacket {
    /// Wraps `original` for the retransmission stream (RFC 4588 §4): same timestamp and marker,
    /// `payloadType` and `ssrc` of the RTX stream, the next RTX `sequenceNumber`, OSN first in the payload.
    public static func wrap(_ original: RTPPacket, payloadType: UInt8, ssrc: UInt32, sequenceNumber: UInt16) -> RTPPacket {
        var payload = ByteBuffer()
        payload.reserveCapacity(2 + original.payload.readableBytes)
        payload.writeInteger(original.sequenceNumber)
        var body = original.payload
        payload.writeBuffer(&body)
        return RTPPacket(
            marker: original.marker, payloadType: payloadType, sequenceNumber: sequenceNumber, timestamp: original.timestamp,
            ssrc: ssrc, csrcs: original.csrcs, headerExtension: original.headerExtension, payload: payload)
    }

    /// Restores the original packet from an RTX packet (RFC 4588 §4): the OSN becomes the sequence
    /// number; the caller supplies the original stream's payload type and SSRC, which it knows from
    /// `a=fmtp:<rtx> apt=<pt>` and `a=ssrc-group:FID` (RFC 4588 §8).
    ///
    /// - Throws: ``RTPError`` `.truncated` when the payload is shorter than the 2-byte OSN.
    public static func unwrap(_ rtx: RTPPacket, originalPayloadType: UInt8, originalSSRC: UInt32) throws(RTPError) -> RTPPacket {
        var payload = rtx.payload
        guard let osn = payload.readInteger(as: UInt16.self) else {
            throw RTPError(.truncated, "RTX packet of \(rtx.payload.readableBytes) payload bytes lacks the 2-byte original sequence number (RFC 4588 §4)")
        }
        return RTPPacket(
            marker: rtx.marker, payloadType: originalPayloadType, sequenceNumber: osn, timestamp: rtx.timestamp,
            ssrc: originalSSRC, csrcs: rtx.csrcs, headerExtension: rtx.headerExtension, payload: payload)
    }
}
