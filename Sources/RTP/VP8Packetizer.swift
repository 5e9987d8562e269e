import NIOCore

/// Splits encoded VP8 frames into RTP packets (RFC 7741 §4.4) of at most ``mtu`` bytes each, with a
/// 15-bit picture ID that increases by one per frame.
public struct VP8Packetizer: Sendable {
    /// The largest RTP packet produced, header included.
    public let mtu: Int
    /// The RTP payload type negotiated for VP8.
    public var payloadType: UInt8
    /// The sender's SSRC.
    public var ssrc: UInt32
    /// The sequence number the next packet gets.
    public var nextSequenceNumber: UInt16
    /// The picture ID the next frame gets (15 bits).
    public var nextPictureID: UInt16
    /// Bytes reserved in every packet for header extensions the sender adds later (RFC 8285), a multiple of 4.
    public var reservedExtensionBytes: Int

    /// The default MTU: 1200 bytes, the size WebRTC stacks use to stay below path MTUs with SRTP and TURN overhead.
    public static let defaultMTU = 1200

    /// Creates a packetizer.
    ///
    /// - Throws: ``RTPError`` `.invalidArgument` when the MTU leaves no room for VP8 data.
    public init(payloadType: UInt8, ssrc: UInt32, mtu: Int = defaultMTU, firstSequenceNumber: UInt16 = 0, firstPictureID: UInt16 = 0, reservedExtensionBytes: Int = 0) throws(RTPError) {
        guard mtu - RTPPacket.fixedHeaderSize - reservedExtensionBytes > 8 else {
            throw RTPError(.invalidArgument, "MTU \(mtu) leaves no room for VP8 data after \(RTPPacket.fixedHeaderSize + reservedExtensionBytes) header bytes")
        }
        self.mtu = mtu
        self.payloadType = payloadType
        self.ssrc = ssrc
        self.nextSequenceNumber = firstSequenceNumber
        self.nextPictureID = firstPictureID & 0x7FFF
        self.reservedExtensionBytes = reservedExtensionBytes
    }

    /// Packetizes one encoded frame. The last packet has the marker bit (RFC 7741 §4.1); the
    /// fragments are balanced so that no packet is much smaller than the others.
    public mutating func packetize(frame: ByteBuffer, timestamp: UInt32, nonReference: Bool = false) -> [RTPPacket] {
        guard frame.readableBytes > 0 else { return [] }
        let pictureID = nextPictureID
        nextPictureID = (nextPictureID + 1) & 0x7FFF
        let descriptorSize = VP8PayloadDescriptor(startOfPartition: true, pictureID: pictureID).encodedSize
        let room = mtu - RTPPacket.fixedHeaderSize - reservedExtensionBytes - descriptorSize
        let count = (frame.readableBytes + room - 1) / room
        let base = frame.readableBytes / count
        let extra = frame.readableBytes % count

        var remaining = frame
        var packets: [RTPPacket] = []
        packets.reserveCapacity(count)
        for index in 0..<count {
            let size = base + (index < extra ? 1 : 0)
            // `size` never exceeds what remains, so the slice exists.
            var fragment = remaining.readSlice(length: size) ?? ByteBuffer()
            let descriptor = VP8PayloadDescriptor(nonReference: nonReference, startOfPartition: index == 0, pictureID: pictureID)
            var payload = ByteBuffer()
            payload.reserveCapacity(descriptorSize + size)
            // The descriptor's fields are within their widths by construction.
            try? descriptor.write(into: &payload)
            payload.writeBuffer(&fragment)
            packets.append(RTPPacket(
                marker: index == count - 1, payloadType: payloadType, sequenceNumber: nextSequenceNumber,
                timestamp: timestamp, ssrc: ssrc, payload: payload))
            nextSequenceNumber &+= 1
        }
        return packets
    }
}
