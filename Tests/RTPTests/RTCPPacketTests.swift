import NIOCore
import Testing
import TestSupport
@testable import RTP

@Suite("RTCP packets (RFC 3550 §6, RFC 4585, RFC 5104, REMB, transport-cc)")
struct RTCPPacketTests {
    /// Parses `bytes` as one packet, checks that it serializes back to the same bytes and returns it.
    private func roundTrip(_ bytes: ByteBuffer, sourceLocation: SourceLocation = #_sourceLocation) throws -> RTCPPacket {
        let packets = try RTCPPacket.parseCompound(bytes)
        #expect(packets.count == 1, sourceLocation: sourceLocation)
        let again = try RTCPPacket.serializeCompound(packets)
        #expect(again.hexString == bytes.hexString, sourceLocation: sourceLocation)
        return packets[0]
    }

    @Test("sender report with a report block; cumulative loss is signed 24-bit (§6.4.1)")
    func senderReport() throws {
        let bytes = hexBuffer("""
            81 c8 00 0c  11 22 33 44  83 aa 7e 80 40 00 00 00  00 00 10 00  00 00 00 10  00 00 08 00
            55 66 77 88  40 ff ff ff  00 01 00 05  00 00 00 20  7e 80 40 00  00 01 00 00
            """)
        guard case .senderReport(let report) = try roundTrip(bytes) else { Issue.record("not an SR"); return }
        #expect(report.ssrc == 0x1122_3344)
        #expect(report.ntpTimestamp == 0x83AA_7E80_4000_0000)
        #expect(report.compactNTP == 0x7E80_4000)
        #expect(report.rtpTimestamp == 0x1000)
        #expect(report.packetCount == 16)
        #expect(report.octetCount == 2048)
        #expect(report.reports.count == 1)
        let block = try #require(report.reports.first)
        #expect(block.ssrc == 0x5566_7788)
        #expect(block.fractionLost == 0x40)
        #expect(block.cumulativeLost == -1)
        #expect(block.extendedHighestSequenceNumber == 0x0001_0005)
        #expect(block.jitter == 32)
        #expect(block.lastSenderReport == 0x7E80_4000)
        #expect(block.delaySinceLastSenderReport == 0x0001_0000)
    }

    @Test("receiver report (§6.4.2) and an empty one")
    func receiverReport() throws {
        let bytes = hexBuffer("81 c9 00 07  00 00 00 01  00 00 00 02  00 00 00 03  00 00 ff ff  00 00 00 00  00 00 00 00  00 00 00 00")
        guard case .receiverReport(let report) = try roundTrip(bytes) else { Issue.record("not an RR"); return }
        #expect(report.ssrc == 1)
        #expect(report.reports == [RTCPReportBlock(ssrc: 2, fractionLost: 0, cumulativeLost: 3, extendedHighestSequenceNumber: 0xFFFF,
                                                   jitter: 0, lastSenderReport: 0, delaySinceLastSenderReport: 0)])
        guard case .receiverReport(let empty) = try roundTrip(hexBuffer("80 c9 00 01 00 00 00 09")) else { Issue.record("not an RR"); return }
        #expect(empty.reports.isEmpty)
    }

    @Test("SDES CNAME chunk ends on a 32-bit boundary with at least one null (§6.5)")
    func sourceDescription() throws {
        // ssrc, CNAME "abcd" (type 1, len 4), END, pad: 4 + 2 + 4 = 10, +1 END = 11, pad to 12.
        let bytes = hexBuffer("81 ca 00 03  00 00 00 2a  01 04 61 62 63 64 00 00")
        guard case .sourceDescription(let sdes) = try roundTrip(bytes) else { Issue.record("not SDES"); return }
        #expect(sdes == .cname(ssrc: 42, "abcd"))
        // A 2-byte CNAME: 4 + 2 + 2 = 8, END needs a whole extra word.
        let two = try RTCPPacket.serializeCompound([.sourceDescription(.cname(ssrc: 1, "ab"))])
        #expect(two.hexString == "81ca000300000001010261620000" + "0000")
        #expect(try RTCPPacket.parseCompound(two) == [.sourceDescription(.cname(ssrc: 1, "ab"))])
    }

    @Test("BYE with a reason (§6.6)")
    func goodbye() throws {
        let bytes = hexBuffer("82 cb 00 04  00 00 00 01 00 00 00 02  04 62 79 65 21 00 00 00")
        guard case .goodbye(let bye) = try roundTrip(bytes) else { Issue.record("not BYE"); return }
        #expect(bye == RTCPGoodbye(ssrcs: [1, 2], reason: "bye!"))
        // Invalid UTF-8 in the reason is refused rather than silently replaced (RFC 3550 §6.6: UTF-8 text).
        expectError(RTPError.Code.malformed) { _ = try RTCPPacket.parseCompound(hexBuffer("81 cb 00 02 00 00 00 01 02 c3 28 00")) }
    }

    @Test("generic NACK: PID and BLP expand to the lost sequence numbers (RFC 4585 §6.2.1)")
    func nack() throws {
        let bytes = hexBuffer("81 cd 00 03  00 00 00 01  00 00 00 02  00 64 80 05")
        guard case .nack(let nack) = try roundTrip(bytes) else { Issue.record("not a NACK"); return }
        #expect(nack.senderSSRC == 1)
        #expect(nack.mediaSSRC == 2)
        #expect(nack.lostSequenceNumbers == [100, 101, 103, 116])
        // Across the sequence number wrap, and a second FCI entry when the gap exceeds 16.
        let wrapped = RTCPGenericNACK(senderSSRC: 1, mediaSSRC: 2, lostSequenceNumbers: [65535, 0, 1, 40])
        let wire = try RTCPPacket.serializeCompound([.nack(wrapped)])
        #expect(wire.hexString == "81cd000400000001" + "00000002" + "ffff0003" + "00280000")
        #expect(try RTCPPacket.parseCompound(wire) == [.nack(wrapped)])
    }

    @Test("PLI has no FCI (RFC 4585 §6.3.1)")
    func pli() throws {
        guard case .pictureLossIndication(let pli) = try roundTrip(hexBuffer("81 ce 00 02 00 00 00 01 00 00 00 02")) else { Issue.record("not a PLI"); return }
        #expect(pli == RTCPPictureLossIndication(senderSSRC: 1, mediaSSRC: 2))
    }

    @Test("FIR entries carry the target SSRC and a command sequence number (RFC 5104 §4.3.1)")
    func fir() throws {
        let bytes = hexBuffer("84 ce 00 04  00 00 00 01  00 00 00 00  00 00 00 07 05 00 00 00")
        guard case .fullIntraRequest(let fir) = try roundTrip(bytes) else { Issue.record("not a FIR"); return }
        #expect(fir == RTCPFullIntraRequest(senderSSRC: 1, entries: [.init(ssrc: 7, sequenceNumber: 5)]))
    }

    @Test("REMB: 6-bit exponent, 18-bit mantissa (draft-alvestrand-rmcat-remb §2.2)")
    func remb() throws {
        // 1 SSRC, exponent 3, mantissa 0x3D090 (250000) → 2 Mb/s.
        let bytes = hexBuffer("8f ce 00 05  00 00 00 01  00 00 00 00  52 45 4d 42  01 0f d0 90  00 00 00 09")
        guard case .receiverEstimatedMaxBitrate(let remb) = try roundTrip(bytes) else { Issue.record("not REMB"); return }
        #expect(remb.bitrate == 2_000_000)
        #expect(remb.ssrcs == [9])
        // A value that needs rounding keeps 18 significant bits.
        let odd = RTCPReceiverEstimatedMaxBitrate(senderSSRC: 1, bitrate: 1_234_567, ssrcs: [])
        guard case .receiverEstimatedMaxBitrate(let parsed) = try RTCPPacket.parseCompound(RTCPPacket.serializeCompound([.receiverEstimatedMaxBitrate(odd)]))[0] else {
            Issue.record("not REMB"); return
        }
        #expect(parsed.bitrate <= 1_234_567 && parsed.bitrate > 1_234_567 - 8)
    }

    @Test("transport-cc feedback: status vector chunk, small and large deltas, P-bit padding as libwebrtc sends it (draft-holmer §3.1)")
    func transportFeedback() throws {
        let bytes = hexBuffer("""
            af cd 00 06  00 00 00 01  00 00 00 02  00 64 00 04  00 01 02 07
            d2 40  04  ff ff  ff  00 02
            """)
        // Zero padding without the P bit, as the draft's figure shows, parses the same.
        let unpadded = hexBuffer("8f cd 00 06 00 00 00 01 00 00 00 02 00 64 00 04 00 01 02 07 d2 40 04 ff ff ff 00 00")
        #expect(try RTCPPacket.parseCompound(unpadded) == RTCPPacket.parseCompound(bytes))
        guard case .transportFeedback(let feedback) = try roundTrip(bytes) else { Issue.record("not transport-cc"); return }
        #expect(feedback.baseSequenceNumber == 100)
        #expect(feedback.referenceTime == 0x102)
        #expect(feedback.feedbackPacketCount == 7)
        #expect(feedback.packets == [.received(delta: 4), .notReceived, .received(delta: -1), .received(delta: 255)])
    }

    @Test("transport-cc: long runs use run-length chunks; a negative reference time survives")
    func transportFeedbackRuns() throws {
        var statuses = [RTCPTransportFeedback.PacketStatus](repeating: .received(delta: 1), count: 40)
        statuses += [RTCPTransportFeedback.PacketStatus](repeating: .notReceived, count: 3)
        statuses += [.received(delta: 1000), .received(delta: 2)]
        let feedback = RTCPTransportFeedback(senderSSRC: 5, mediaSSRC: 6, baseSequenceNumber: 65530, referenceTime: -5,
                                             feedbackPacketCount: 255, packets: statuses)
        let wire = try RTCPPacket.serializeCompound([.transportFeedback(feedback)])
        // First chunk: run length, symbol 1, run 40.
        #expect(wire.getInteger(at: 20, as: UInt16.self) == 0x2028)
        #expect(try RTCPPacket.parseCompound(wire) == [.transportFeedback(feedback)])
    }

    @Test("a compound packet: SR, SDES and a NACK in one datagram (§6.1)")
    func compound() throws {
        let packets: [RTCPPacket] = [
            .senderReport(RTCPSenderReport(ssrc: 1, ntpTimestamp: 1 << 32, rtpTimestamp: 90_000, packetCount: 10, octetCount: 10_000)),
            .sourceDescription(.cname(ssrc: 1, "meshnode")),
            .nack(RTCPGenericNACK(senderSSRC: 1, mediaSSRC: 2, lostSequenceNumbers: [7])),
            .goodbye(RTCPGoodbye(ssrcs: [1], reason: "done")),
            .unknown(RTCPUnknownPacket(packetType: 204, count: 3, body: ByteBuffer(bytes: [0, 0, 0, 1, 0x41, 0x42, 0x43, 0x44]))),
        ]
        let wire = try RTCPPacket.serializeCompound(packets)
        #expect(wire.readableBytes % 4 == 0)
        #expect(try RTCPPacket.parseCompound(wire) == packets)
        #expect(RTPPacket.isRTCP(wire))
    }

    @Test("padding at the end of a compound packet is stripped (P bit, §6.4.1)")
    func padding() throws {
        let bytes = hexBuffer("a0 c9 00 02 00 00 00 09 00 00 00 04")
        #expect(try RTCPPacket.parseCompound(bytes) == [.receiverReport(RTCPReceiverReport(ssrc: 9))])
    }

    @Test("malformed RTCP is rejected with a reason")
    func malformed() {
        expectError(RTPError.Code.truncated) { _ = try RTCPPacket.parseCompound(hexBuffer("80 c9 00")) }
        expectError(RTPError.Code.truncated) { _ = try RTCPPacket.parseCompound(ByteBuffer()) }
        expectError(RTPError.Code.unsupportedVersion) { _ = try RTCPPacket.parseCompound(hexBuffer("40 c9 00 01 00 00 00 01")) }
        // Length says 3 words after the header, 1 present.
        expectError(RTPError.Code.truncated) { _ = try RTCPPacket.parseCompound(hexBuffer("80 c9 00 03 00 00 00 01")) }
        // RR announces one block, has none.
        expectError(RTPError.Code.truncated) { _ = try RTCPPacket.parseCompound(hexBuffer("81 c9 00 01 00 00 00 01")) }
        // SDES chunk without END.
        expectError(RTPError.Code.truncated) { _ = try RTCPPacket.parseCompound(hexBuffer("81 ca 00 02 00 00 00 01 01 02 61 62")) }
        // NACK without FCI.
        expectError(RTPError.Code.malformed) { _ = try RTCPPacket.parseCompound(hexBuffer("81 cd 00 02 00 00 00 01 00 00 00 02")) }
        // FIR FCI of 4 bytes.
        expectError(RTPError.Code.malformed) { _ = try RTCPPacket.parseCompound(hexBuffer("84 ce 00 03 00 00 00 01 00 00 00 00 00 00 00 07")) }
        // transport-cc announcing 20 statuses with one 2-chunk and no deltas.
        expectError(RTPError.Code.truncated) { _ = try RTCPPacket.parseCompound(hexBuffer("8f cd 00 04 00 00 00 01 00 00 00 02 00 00 00 14 00 00 00 00")) }
        // transport-cc run length chunk with the reserved symbol 3.
        expectError(RTPError.Code.malformed) { _ = try RTCPPacket.parseCompound(hexBuffer("8f cd 00 05 00 00 00 01 00 00 00 02 00 00 00 01 00 00 00 00 60 01 00 00")) }
        // Padding count larger than the body.
        expectError(RTPError.Code.malformed) { _ = try RTCPPacket.parseCompound(hexBuffer("a0 c9 00 01 00 00 00 09")) }
        // BYE reason longer than the packet.
        expectError(RTPError.Code.truncated) { _ = try RTCPPacket.parseCompound(hexBuffer("81 cb 00 02 00 00 00 01 09 61 62 63")) }
    }

    @Test("random and mutated input never traps; whatever parses re-serializes to something that parses the same")
    func mutationRobustness() throws {
        var generator = SplitMix64(seed: 0x5EED)
        let seeds: [ByteBuffer] = [
            try RTCPPacket.serializeCompound([
                .senderReport(RTCPSenderReport(ssrc: 1, ntpTimestamp: 5, rtpTimestamp: 6, packetCount: 7, octetCount: 8,
                                               reports: [RTCPReportBlock(ssrc: 2, fractionLost: 1, cumulativeLost: 2, extendedHighestSequenceNumber: 3, jitter: 4, lastSenderReport: 5, delaySinceLastSenderReport: 6)])),
                .sourceDescription(.cname(ssrc: 1, "x")),
                .transportFeedback(RTCPTransportFeedback(senderSSRC: 1, mediaSSRC: 2, baseSequenceNumber: 3, referenceTime: 4, feedbackPacketCount: 5,
                                                         packets: [.received(delta: 3), .notReceived, .received(delta: -300)])),
                .receiverEstimatedMaxBitrate(RTCPReceiverEstimatedMaxBitrate(senderSSRC: 1, bitrate: 300_000, ssrcs: [1, 2])),
            ]),
            hexBuffer("90 e0 00 07 00 00 00 01 00 00 00 02 be de 00 02 10 aa 00 21 bb cc 00 00 ff"),
            hexBuffer("90 60 00 07 00 00 00 01 00 00 00 02 10 00 00 01 01 01 aa 00 ff"),
        ]
        for _ in 0..<4000 {
            let seed = seeds[Int.random(in: 0..<seeds.count, using: &generator)]
            var bytes = seed.getBytes(at: seed.readerIndex, length: seed.readableBytes) ?? []
            if bytes.isEmpty { bytes = [0x80] }
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
                case 1: bytes.removeLast(Int.random(in: 0...min(8, bytes.count - 1), using: &generator))
                default: bytes.append(UInt8.random(in: 0...255, using: &generator))
                }
            }
            let buffer = ByteBuffer(bytes: bytes)
            if let packets = try? RTCPPacket.parseCompound(buffer) {
                let again = try RTCPPacket.serializeCompound(packets)
                #expect(try RTCPPacket.parseCompound(again) == packets)
            }
            if let packet = try? RTPPacket(parsing: buffer) {
                let again = try packet.serialized()
                #expect(try RTPPacket(parsing: again).payload == packet.payload)
            }
            var payload = buffer
            _ = try? VP8PayloadDescriptor(reading: &payload)
        }
    }
}
