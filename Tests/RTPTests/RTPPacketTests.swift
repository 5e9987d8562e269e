import NIOCore
import Testing
import TestSupport
@testable import RTP

@Suite("RTP packets (RFC 3550 §5.1, RFC 8285)")
struct RTPPacketTests {
    @Test("fixed header, marker and payload parse and serialize byte for byte")
    func fixedHeader() throws {
        let bytes = hexBuffer("80 e0 12 34 de ad be ef 11 22 33 44 01 02 03")
        let packet = try RTPPacket(parsing: bytes)
        #expect(packet.marker)
        #expect(packet.payloadType == 96)
        #expect(packet.sequenceNumber == 0x1234)
        #expect(packet.timestamp == 0xDEAD_BEEF)
        #expect(packet.ssrc == 0x1122_3344)
        #expect(packet.csrcs.isEmpty)
        #expect(packet.headerExtension == nil)
        #expect(packet.payload == ByteBuffer(bytes: [1, 2, 3]))
        #expect(try packet.serialized() == bytes)
    }

    @Test("CSRC list and padding (P bit, last octet counts the padding)")
    func csrcsAndPadding() throws {
        let bytes = hexBuffer("a2 6f 00 01 00 00 00 0a 00 00 00 0b  00 00 00 01 00 00 00 02  aa bb  00 00 03")
        let packet = try RTPPacket(parsing: bytes)
        #expect(packet.csrcs == [1, 2])
        #expect(packet.payloadType == 111)
        #expect(!packet.marker)
        #expect(packet.paddingLength == 3)
        #expect(packet.payload == ByteBuffer(bytes: [0xAA, 0xBB]))
        #expect(try packet.serialized() == bytes)
    }

    @Test("RFC 8285 §4.2 one-byte extensions: elements, padding, and the 0xBEDE profile")
    func oneByteExtension() throws {
        // id 1 len 1 (AA); padding byte; id 2 len 2 (BB CC); pad to 8 bytes.
        let bytes = hexBuffer("90 60 00 07 00 00 00 01 00 00 00 02  be de 00 02  10 aa 00 21 bb cc 00 00  ff")
        let packet = try RTPPacket(parsing: bytes)
        guard case .oneByte(let elements) = packet.headerExtension else {
            Issue.record("expected one-byte extension, got \(String(describing: packet.headerExtension))")
            return
        }
        #expect(elements.map(\.id) == [1, 2])
        #expect(elements[1].data == ByteBuffer(bytes: [0xBB, 0xCC]))
        #expect(packet.payload == ByteBuffer(bytes: [0xFF]))
        // Re-serialized without the interior padding byte: id 1, id 2, then zero padding.
        let again = try packet.serialized()
        #expect(again.hexString == "906000070000000100000002bede000210aa21bbcc000000ff")
        #expect(try RTPPacket(parsing: again) == packet)
    }

    @Test("RFC 8285 §4.3 two-byte extensions with app bits, empty and long elements")
    func twoByteExtension() throws {
        let long = [UInt8](repeating: 0x5A, count: 20)
        let packet = RTPPacket(
            payloadType: 96, sequenceNumber: 9, timestamp: 90_000, ssrc: 7,
            headerExtension: .twoByte(appBits: 3, [RTPHeaderExtensionElement(id: 1, bytes: []), RTPHeaderExtensionElement(id: 200, bytes: long)]),
            payload: ByteBuffer(bytes: [1]))
        let bytes = try packet.serialized()
        // profile 0x1003, 1+1 + 2+20 = 24 bytes = 6 words.
        #expect(bytes.getBytes(at: 12, length: 8) == [0x10, 0x03, 0x00, 0x06, 0x01, 0x00, 200, 20])
        #expect(try RTPPacket(parsing: bytes) == packet)
    }

    @Test("compact() picks one-byte when it can and two-byte when an element needs it")
    func compactForm() throws {
        let small = RTPHeaderExtension.compact([.transportSequenceNumber(id: 3, 0x0102), .mid(id: 4, "0")])
        guard case .oneByte = small else { Issue.record("expected one-byte"); return }
        let big = RTPHeaderExtension.compact([.mid(id: 15, "video")])
        guard case .twoByte = big else { Issue.record("expected two-byte for id 15"); return }
        let packet = RTPPacket(payloadType: 111, sequenceNumber: 1, timestamp: 960, ssrc: 1, headerExtension: small, payload: ByteBuffer(bytes: [0xFC]))
        let parsed = try RTPPacket(parsing: try packet.serialized())
        #expect(parsed.headerExtension?.elements.first { $0.id == 3 }?.transportSequenceNumberValue == 0x0102)
        #expect(parsed.headerExtension?.elements.first { $0.id == 4 }?.midValue == "0")
    }

    @Test("abs-send-time is 6.18 fixed-point seconds modulo 64")
    func absSendTime() {
        let element = RTPHeaderExtensionElement.absSendTime(id: 2, seconds: 65.5)
        #expect(element.data == ByteBuffer(bytes: [0x06, 0x00, 0x00]))
        #expect(element.absSendTimeSeconds == 1.5)
    }

    @Test("an unknown extension profile is kept opaque (RFC 3550 §5.3.1)")
    func otherProfile() throws {
        let bytes = hexBuffer("90 00 00 01 00 00 00 00 00 00 00 01  ab cd 00 01 01 02 03 04")
        let packet = try RTPPacket(parsing: bytes)
        #expect(packet.headerExtension == .other(profile: 0xABCD, data: ByteBuffer(bytes: [1, 2, 3, 4])))
        #expect(packet.payload.readableBytes == 0)
        #expect(try packet.serialized() == bytes)
    }

    @Test("malformed packets are rejected with a reason, never trapped on")
    func malformed() {
        expectError(RTPError.Code.truncated) { _ = try RTPPacket(parsing: hexBuffer("80 60 00 01 00 00")) }
        expectError(RTPError.Code.unsupportedVersion) { _ = try RTPPacket(parsing: hexBuffer("40 60 00 01 00 00 00 00 00 00 00 01")) }
        // CC = 2 but only one CSRC.
        expectError(RTPError.Code.truncated) { _ = try RTPPacket(parsing: hexBuffer("82 60 00 01 00 00 00 00 00 00 00 01 00 00 00 05")) }
        // Extension announces 2 words, has 1.
        expectError(RTPError.Code.truncated) { _ = try RTPPacket(parsing: hexBuffer("90 60 00 01 00 00 00 00 00 00 00 01 be de 00 02 10 aa 00 00")) }
        // One-byte element runs past the block.
        expectError(RTPError.Code.truncated) { _ = try RTPPacket(parsing: hexBuffer("90 60 00 01 00 00 00 00 00 00 00 01 be de 00 01 13 aa bb cc")) }
        // One-byte element with the reserved id 0 but a length: not padding, not valid.
        expectError(RTPError.Code.malformed) { _ = try RTPPacket(parsing: hexBuffer("90 60 00 01 00 00 00 00 00 00 00 01 be de 00 01 05 aa bb cc")) }
        // Padding count 0, and padding longer than the packet.
        expectError(RTPError.Code.malformed) { _ = try RTPPacket(parsing: hexBuffer("a0 60 00 01 00 00 00 00 00 00 00 01 aa 00")) }
        expectError(RTPError.Code.truncated) { _ = try RTPPacket(parsing: hexBuffer("a0 60 00 01 00 00 00 00 00 00 00 01 aa 20")) }
    }

    @Test("serializing refuses values that do not fit their fields")
    func invalidSerialization() {
        let payload = ByteBuffer(bytes: [0])
        expectError(RTPError.Code.invalidArgument) { _ = try RTPPacket(payloadType: 128, sequenceNumber: 0, timestamp: 0, ssrc: 0, payload: payload).serialized() }
        expectError(RTPError.Code.invalidArgument) {
            _ = try RTPPacket(payloadType: 0, sequenceNumber: 0, timestamp: 0, ssrc: 0, csrcs: Array(repeating: 1, count: 16), payload: payload).serialized()
        }
        expectError(RTPError.Code.invalidArgument) {
            _ = try RTPPacket(payloadType: 0, sequenceNumber: 0, timestamp: 0, ssrc: 0,
                              headerExtension: .oneByte([RTPHeaderExtensionElement(id: 15, bytes: [1])]), payload: payload).serialized()
        }
    }

    @Test("rtcp-mux demultiplexing by the second octet (RFC 5761 §4)")
    func demux() {
        #expect(RTPPacket.isRTCP(hexBuffer("80 c8 00 06")))
        #expect(RTPPacket.isRTCP(hexBuffer("81 cd 00 03")))
        #expect(!RTPPacket.isRTCP(hexBuffer("80 60 00 01")))
        #expect(!RTPPacket.isRTCP(hexBuffer("80 e0 00 01")))  // PT 96 with marker
        #expect(!RTPPacket.isRTCP(hexBuffer("80")))
    }
}
