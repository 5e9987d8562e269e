import NIOCore

/// An RTP data packet (RFC 3550 §5.1), with optional RFC 8285 header extensions.
///
/// Parsing copies nothing: ``payload`` is a slice of the datagram it came from.
public struct RTPPacket: Hashable, Sendable {
    /// The fixed header size without CSRCs (RFC 3550 §5.1).
    public static let fixedHeaderSize = 12

    /// The marker bit; for video the last packet of a frame (RFC 3551 §4.1), for audio the first after silence.
    public var marker: Bool
    /// The 7-bit payload type (RFC 3550 §5.1).
    public var payloadType: UInt8
    /// The 16-bit sequence number, incremented by one per packet.
    public var sequenceNumber: UInt16
    /// The media timestamp in the payload format's clock (48 kHz for Opus, 90 kHz for VP8).
    public var timestamp: UInt32
    /// The synchronization source.
    public var ssrc: UInt32
    /// Contributing sources, at most 15 (RFC 3550 §5.1, CC field).
    public var csrcs: [UInt32]
    /// The header extension block, if the X bit is set (RFC 3550 §5.3.1, RFC 8285).
    public var headerExtension: RTPHeaderExtension?
    /// The payload, without padding.
    public var payload: ByteBuffer
    /// The number of padding octets at the end, including the count octet itself; 0 for none (RFC 3550 §5.1, P bit).
    public var paddingLength: UInt8

    /// Creates a packet.
    public init(
        marker: Bool = false, payloadType: UInt8, sequenceNumber: UInt16, timestamp: UInt32, ssrc: UInt32,
        csrcs: [UInt32] = [], headerExtension: RTPHeaderExtension? = nil, payload: ByteBuffer, paddingLength: UInt8 = 0
    ) {
        self.marker = marker
        self.payloadType = payloadType
        self.sequenceNumber = sequenceNumber
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.csrcs = csrcs
        self.headerExtension = headerExtension
        self.payload = payload
        self.paddingLength = paddingLength
    }

    /// Parses one RTP packet from a whole datagram.
    ///
    /// - Throws: ``RTPError`` with `.unsupportedVersion` unless the version is 2, `.truncated` when
    ///   the CSRC list, the extension or the padding runs past the end, `.malformed` for a padding count of 0.
    public init(parsing datagram: ByteBuffer) throws(RTPError) {
        var buffer = datagram
        guard let (first, second, sequence, timestamp, ssrc) = buffer.readMultipleIntegers(
            as: (UInt8, UInt8, UInt16, UInt32, UInt32).self)
        else {
            throw RTPError(.truncated, "RTP packet of \(datagram.readableBytes) bytes is shorter than the 12-byte fixed header")
        }
        guard first >> 6 == 2 else {
            throw RTPError(.unsupportedVersion, "RTP version \(first >> 6), expected 2 (RFC 3550 §5.1)")
        }
        let hasPadding = first & 0x20 != 0
        let hasExtension = first & 0x10 != 0
        let csrcCount = Int(first & 0x0F)

        var padding: UInt8 = 0
        if hasPadding {
            guard let last = datagram.getInteger(at: datagram.writerIndex - 1, as: UInt8.self), last > 0 else {
                throw RTPError(.malformed, "RTP padding bit set but the padding count octet is 0")
            }
            padding = last
            guard Int(last) <= buffer.readableBytes else {
                throw RTPError(.truncated, "RTP padding of \(last) bytes exceeds the \(buffer.readableBytes) bytes after the fixed header")
            }
            buffer.moveWriterIndex(to: buffer.writerIndex - Int(last))
        }

        var csrcs: [UInt32] = []
        csrcs.reserveCapacity(csrcCount)
        for index in 0..<csrcCount {
            guard let csrc = buffer.readInteger(as: UInt32.self) else {
                throw RTPError(.truncated, "RTP header announces \(csrcCount) CSRCs but ends after \(index)")
            }
            csrcs.append(csrc)
        }

        var headerExtension: RTPHeaderExtension?
        if hasExtension {
            guard let (profile, words) = buffer.readMultipleIntegers(as: (UInt16, UInt16).self) else {
                throw RTPError(.truncated, "RTP extension bit set but the extension header is missing")
            }
            guard var body = buffer.readSlice(length: Int(words) * 4) else {
                throw RTPError(.truncated, "RTP header extension announces \(Int(words) * 4) bytes, \(buffer.readableBytes) remain")
            }
            headerExtension = try RTPHeaderExtension(profile: profile, parsing: &body)
        }

        self.marker = second & 0x80 != 0
        self.payloadType = second & 0x7F
        self.sequenceNumber = sequence
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.csrcs = csrcs
        self.headerExtension = headerExtension
        self.payload = buffer
        self.paddingLength = padding
    }

    /// Appends the packet's wire form to `buffer`.
    ///
    /// - Throws: ``RTPError`` `.invalidArgument` for more than 15 CSRCs, a payload type above 127,
    ///   or an extension element that its form cannot carry.
    public func write(into buffer: inout ByteBuffer) throws(RTPError) {
        guard csrcs.count <= 15 else {
            throw RTPError(.invalidArgument, "an RTP packet carries at most 15 CSRCs, got \(csrcs.count)")
        }
        guard payloadType <= 127 else {
            throw RTPError(.invalidArgument, "RTP payload type \(payloadType) does not fit in 7 bits")
        }
        let first = UInt8(0x80) | (paddingLength > 0 ? 0x20 : 0) | (headerExtension != nil ? 0x10 : 0) | UInt8(csrcs.count)
        let second = (marker ? 0x80 : 0) | payloadType
        buffer.writeMultipleIntegers(first, second, sequenceNumber, timestamp, ssrc)
        for csrc in csrcs { buffer.writeInteger(csrc) }
        if let headerExtension { try headerExtension.write(into: &buffer) }
        var payload = payload
        buffer.writeBuffer(&payload)
        if paddingLength > 0 {
            buffer.writeRepeatingByte(0, count: Int(paddingLength) - 1)
            buffer.writeInteger(paddingLength)
        }
    }

    /// The packet's wire form in a new buffer, with room after it for what SRTP appends (its tag,
    /// an MKI: up to 148 bytes), so that protecting it in place does not reallocate.
    public func serialized(allocator: ByteBufferAllocator = ByteBufferAllocator()) throws(RTPError) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: Self.fixedHeaderSize + csrcs.count * 4 + payload.readableBytes + 64 + Self.srtpTrailerRoom)
        try write(into: &buffer)
        return buffer
    }

    /// Bytes left free after a serialized packet for SRTP's trailer (`SRTP_MAX_TRAILER_LEN` plus the SRTCP index word).
    static let srtpTrailerRoom = 148

    /// Whether a datagram received on an rtcp-mux port is RTCP rather than RTP: RFC 5761 §4 reserves
    /// the second octet's values 192–223 (payload types 64–95 with the marker bit) for RTCP.
    public static func isRTCP(_ datagram: ByteBuffer) -> Bool {
        guard let second = datagram.getInteger(at: datagram.readerIndex + 1, as: UInt8.self) else { return false }
        return (192...223).contains(second)
    }
}
