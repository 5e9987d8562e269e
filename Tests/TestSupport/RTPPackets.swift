public import NIOCore
import RTP

/// An RTP packet with a recognisable payload.
public func rtpPacket(sequence: UInt16, ssrc: UInt32, payload: String, payloadType: UInt8 = 111) throws -> ByteBuffer {
    try RTPPacket(payloadType: payloadType, sequenceNumber: sequence, timestamp: UInt32(sequence) * 960, ssrc: ssrc,
                  payload: ByteBuffer(string: payload)).serialized()
}
