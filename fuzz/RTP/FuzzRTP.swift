import RTP
import NIOCore

/// libFuzzer entry: the RTP (RFC 3550 §5.1, RFC 8285) and RTCP (RFC 3550 §6, RFC 4585, RFC 5104)
/// header parsers and the VP8 payload descriptor (RFC 7741 §4.2). Bad bytes must throw; a packet that parses must serialise and parse again
/// to the same value.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRTP(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = ByteBuffer(bytes: UnsafeBufferPointer(start: data, count: size))
    if let packet = try? RTPPacket(parsing: bytes) {
        precondition(packet.payload.readableBytes <= size - RTPPacket.fixedHeaderSize)
        if let again = try? packet.serialized() {
            let reparsed = try? RTPPacket(parsing: again)
            precondition(reparsed == packet, "an RTP packet did not survive serialising and parsing again")
        }
    }
    if let packets = try? RTCPPacket.parseCompound(bytes), !packets.isEmpty {
        if let again = try? RTCPPacket.serializeCompound(packets) {
            let reparsed = try? RTCPPacket.parseCompound(again)
            precondition(reparsed == packets, "an RTCP compound packet did not survive serialising and parsing again")
        }
    }
    var payload = bytes
    if let descriptor = try? VP8PayloadDescriptor(reading: &payload) {
        var written = ByteBuffer()
        if (try? descriptor.write(into: &written)) != nil {
            written.writeInteger(UInt8(0x9D)) // a descriptor must be followed by VP8 data

            let reparsed = try? VP8PayloadDescriptor(reading: &written)
            precondition(reparsed == descriptor, "a VP8 payload descriptor did not survive writing and reading again")
        }
    }
    _ = RTPPacket.isRTCP(bytes)
    return 0
}
