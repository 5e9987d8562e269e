import NIOCore

/// One RTCP packet (RFC 3550 §6), decoded by packet type and, for feedback, by FMT
/// (RFC 4585 §6.1, RFC 5104 §4.3).
public enum RTCPPacket: Hashable, Sendable {
    /// Sender report, PT 200 (RFC 3550 §6.4.1).
    case senderReport(RTCPSenderReport)
    /// Receiver report, PT 201 (RFC 3550 §6.4.2).
    case receiverReport(RTCPReceiverReport)
    /// Source description, PT 202 (RFC 3550 §6.5).
    case sourceDescription(RTCPSourceDescription)
    /// Goodbye, PT 203 (RFC 3550 §6.6).
    case goodbye(RTCPGoodbye)
    /// Generic NACK, PT 205 FMT 1 (RFC 4585 §6.2.1).
    case nack(RTCPGenericNACK)
    /// Transport-wide congestion control feedback, PT 205 FMT 15
    /// (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1).
    case transportFeedback(RTCPTransportFeedback)
    /// Picture loss indication, PT 206 FMT 1 (RFC 4585 §6.3.1).
    case pictureLossIndication(RTCPPictureLossIndication)
    /// Full intra request, PT 206 FMT 4 (RFC 5104 §4.3.1).
    case fullIntraRequest(RTCPFullIntraRequest)
    /// Receiver estimated maximum bitrate, PT 206 FMT 15 (draft-alvestrand-rmcat-remb-03 §2.2).
    case receiverEstimatedMaxBitrate(RTCPReceiverEstimatedMaxBitrate)
    /// Any other packet, kept whole so that it can be passed on.
    case unknown(RTCPUnknownPacket)

    /// RTCP packet types (RFC 3550 §12.1, RFC 4585 §6.1).
    public enum PacketType {
        public static let senderReport: UInt8 = 200
        public static let receiverReport: UInt8 = 201
        public static let sourceDescription: UInt8 = 202
        public static let goodbye: UInt8 = 203
        public static let transportLayerFeedback: UInt8 = 205
        public static let payloadSpecificFeedback: UInt8 = 206
    }

    /// Parses a compound RTCP packet (RFC 3550 §6.1): every packet in the datagram, in order.
    ///
    /// Reduced-size RTCP (RFC 5506), which browsers send with `a=rtcp-rsize`, is accepted: the first
    /// packet need not be a report.
    /// - Throws: ``RTPError`` if any packet in the datagram is malformed; nothing is returned then.
    public static func parseCompound(_ datagram: ByteBuffer) throws(RTPError) -> [RTCPPacket] {
        var buffer = datagram
        var packets: [RTCPPacket] = []
        while buffer.readableBytes > 0 {
            packets.append(try RTCPPacket(reading: &buffer))
        }
        guard !packets.isEmpty else { throw RTPError(.truncated, "empty RTCP datagram") }
        return packets
    }

    /// Serializes packets as one compound packet (RFC 3550 §6.1).
    public static func serializeCompound(_ packets: [RTCPPacket], allocator: ByteBufferAllocator = ByteBufferAllocator()) throws(RTPError) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 128)
        for packet in packets { try packet.write(into: &buffer) }
        return buffer
    }

    /// Reads one RTCP packet from the front of `buffer`, leaving the reader index after it.
    public init(reading buffer: inout ByteBuffer) throws(RTPError) {
        guard let (first, packetType, words) = buffer.getMultipleIntegers(at: buffer.readerIndex, as: (UInt8, UInt8, UInt16).self) else {
            throw RTPError(.truncated, "RTCP packet of \(buffer.readableBytes) bytes is shorter than its 4-byte header")
        }
        guard first >> 6 == 2 else {
            throw RTPError(.unsupportedVersion, "RTCP version \(first >> 6), expected 2 (RFC 3550 §6.4.1)")
        }
        let total = (Int(words) + 1) * 4
        guard let whole = buffer.readSlice(length: total) else {
            throw RTPError(.truncated, "RTCP packet type \(packetType) announces \(total) bytes, \(buffer.readableBytes) remain")
        }
        let count = first & 0x1F
        var body = whole
        body.moveReaderIndex(forwardBy: 4)
        if first & 0x20 != 0 {
            // RFC 3550 §6.4.1: the last octet counts the padding, itself included.
            guard let padding = body.getInteger(at: body.writerIndex - 1, as: UInt8.self), padding > 0, Int(padding) <= body.readableBytes else {
                throw RTPError(.malformed, "RTCP packet type \(packetType) has an invalid padding count")
            }
            body.moveWriterIndex(to: body.writerIndex - Int(padding))
        }
        switch (packetType, count) {
        case (PacketType.senderReport, _):
            self = .senderReport(try RTCPSenderReport(count: count, parsing: &body))
        case (PacketType.receiverReport, _):
            self = .receiverReport(try RTCPReceiverReport(count: count, parsing: &body))
        case (PacketType.sourceDescription, _):
            self = .sourceDescription(try RTCPSourceDescription(count: count, parsing: &body))
        case (PacketType.goodbye, _):
            self = .goodbye(try RTCPGoodbye(count: count, parsing: &body))
        case (PacketType.transportLayerFeedback, RTCPGenericNACK.format):
            self = .nack(try RTCPGenericNACK(parsing: &body))
        case (PacketType.transportLayerFeedback, RTCPTransportFeedback.format):
            self = .transportFeedback(try RTCPTransportFeedback(parsing: &body))
        case (PacketType.payloadSpecificFeedback, RTCPPictureLossIndication.format):
            self = .pictureLossIndication(try RTCPPictureLossIndication(parsing: &body))
        case (PacketType.payloadSpecificFeedback, RTCPFullIntraRequest.format):
            self = .fullIntraRequest(try RTCPFullIntraRequest(parsing: &body))
        case (PacketType.payloadSpecificFeedback, RTCPReceiverEstimatedMaxBitrate.format)
            where RTCPReceiverEstimatedMaxBitrate.matches(body):
            self = .receiverEstimatedMaxBitrate(try RTCPReceiverEstimatedMaxBitrate(parsing: &body))
        default:
            self = .unknown(RTCPUnknownPacket(packetType: packetType, count: count, body: body))
        }
    }

    /// Appends the packet's wire form (header, body, length field) to `buffer`.
    public func write(into buffer: inout ByteBuffer) throws(RTPError) {
        let packetType: UInt8
        let count: UInt8
        var body = ByteBuffer()
        switch self {
        case .senderReport(let report):
            (packetType, count) = (PacketType.senderReport, try report.writeBody(into: &body))
        case .receiverReport(let report):
            (packetType, count) = (PacketType.receiverReport, try report.writeBody(into: &body))
        case .sourceDescription(let description):
            (packetType, count) = (PacketType.sourceDescription, try description.writeBody(into: &body))
        case .goodbye(let goodbye):
            (packetType, count) = (PacketType.goodbye, try goodbye.writeBody(into: &body))
        case .nack(let nack):
            nack.writeBody(into: &body)
            (packetType, count) = (PacketType.transportLayerFeedback, RTCPGenericNACK.format)
        case .transportFeedback(let feedback):
            try feedback.writeBody(into: &body)
            (packetType, count) = (PacketType.transportLayerFeedback, RTCPTransportFeedback.format)
        case .pictureLossIndication(let pli):
            pli.writeBody(into: &body)
            (packetType, count) = (PacketType.payloadSpecificFeedback, RTCPPictureLossIndication.format)
        case .fullIntraRequest(let fir):
            fir.writeBody(into: &body)
            (packetType, count) = (PacketType.payloadSpecificFeedback, RTCPFullIntraRequest.format)
        case .receiverEstimatedMaxBitrate(let remb):
            try remb.writeBody(into: &body)
            (packetType, count) = (PacketType.payloadSpecificFeedback, RTCPReceiverEstimatedMaxBitrate.format)
        case .unknown(let unknown):
            guard unknown.count <= 31 else {
                throw RTPError(.invalidArgument, "RTCP count field is 5 bits, got \(unknown.count)")
            }
            body = unknown.body
            (packetType, count) = (unknown.packetType, unknown.count)
        }
        // Known bodies are whole words; an unknown one that was parsed from a padded packet gets its
        // padding back, with the count in the last octet (RFC 3550 §6.4.1).
        let padding = (4 - body.readableBytes % 4) % 4
        if padding > 0 {
            body.writeRepeatingByte(0, count: padding - 1)
            body.writeInteger(UInt8(padding))
        }
        let words = body.readableBytes / 4
        guard words <= Int(UInt16.max) else {
            throw RTPError(.invalidArgument, "RTCP packet of \(words + 1) words exceeds the 16-bit length field")
        }
        buffer.writeMultipleIntegers(UInt8(0x80) | (padding > 0 ? 0x20 : 0) | count, packetType, UInt16(words))
        buffer.writeBuffer(&body)
    }
}

/// An RTCP packet of a type or feedback format this implementation does not decode.
public struct RTCPUnknownPacket: Hashable, Sendable {
    /// The packet type octet.
    public var packetType: UInt8
    /// The 5-bit count or FMT field.
    public var count: UInt8
    /// The bytes after the 4-byte header, without padding.
    public var body: ByteBuffer

    /// Creates a packet.
    public init(packetType: UInt8, count: UInt8, body: ByteBuffer) {
        self.packetType = packetType
        self.count = count
        self.body = body
    }
}
