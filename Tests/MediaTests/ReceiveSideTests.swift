import NIOCore
import Testing
import TestSupport
@testable import Media
import Codecs
import RTP

@Suite("Receive side: NACK scheduling, retransmission history, jitter buffer (RFC 4585, RFC 4588)")
struct ReceiveSideTests {
    @Test("a gap waits out the reorder window, is NACKed once per RTT, and expires after the retry limit")
    func nackTiming() {
        var scheduler = NACKScheduler(configuration: .init(reorderWindow: .milliseconds(10), maxRetries: 3, minRetryInterval: .milliseconds(5)),
                                      roundTripTime: .milliseconds(50))
        scheduler.update(missing: [7, 8], now: .zero)
        #expect(scheduler.due(now: .milliseconds(5)).nack.isEmpty, "inside the reorder window")
        #expect(scheduler.due(now: .milliseconds(10)).nack == [7, 8])
        #expect(scheduler.due(now: .milliseconds(40)).nack.isEmpty, "one RTT (×1.2) has not passed")
        scheduler.received(8)
        #expect(scheduler.recovered == 1)
        #expect(scheduler.due(now: .milliseconds(70)).nack == [7])
        #expect(scheduler.due(now: .milliseconds(130)).nack == [7])
        let last = scheduler.due(now: .milliseconds(190))
        #expect(last.nack.isEmpty && last.expired == [7], "three requests, then given up")
        scheduler.update(missing: [7], now: .milliseconds(200))
        #expect(scheduler.due(now: .seconds(1)).nack.isEmpty, "an abandoned packet is not requested again")
    }

    @Test("NACK lists are ascending across the sequence number wrap")
    func ascendingAcrossWrap() {
        #expect(NACKScheduler.ascending([2, 65_534, 0, 65_535]) == [65_534, 65_535, 0, 2])
        #expect(NACKScheduler.ascending([9, 3, 5]) == [3, 5, 9])
    }

    @Test("a packet that arrives inside the reorder window is never NACKed")
    func reorderedNotNacked() {
        var scheduler = NACKScheduler()
        scheduler.update(missing: [100], now: .zero)
        scheduler.update(missing: [], now: .milliseconds(3))
        #expect(scheduler.due(now: .milliseconds(50)).nack.isEmpty)
        #expect(scheduler.requestsSent == 0)
    }

    @Test("history answers NACKs with the original packets or RTX (RFC 4588 §4), not twice within an RTT")
    func retransmissionHistory() throws {
        var plain = RetransmissionHistory(mode: .plain, configuration: .init(capacity: 10, maxAge: .seconds(1)))
        plain.roundTripTime = .milliseconds(100)
        for sequence in UInt16(65_530)...UInt16(65_535) {
            plain.record(RTPPacket(payloadType: 96, sequenceNumber: sequence, timestamp: 9, ssrc: 5, payload: ByteBuffer(bytes: [1, 2, UInt8(sequence & 0xFF)])), now: .zero)
        }
        let resent = plain.retransmissions(for: [65_531, 65_533, 2], now: .milliseconds(30))
        #expect(resent.map(\.sequenceNumber) == [65_531, 65_533])
        #expect(plain.missed == 1)
        #expect(plain.retransmissions(for: [65_531], now: .milliseconds(60)).isEmpty, "within one RTT of the last resend")
        #expect(plain.retransmissions(for: [65_531], now: .milliseconds(200)).count == 1)
        #expect(plain.retransmissions(for: [65_531], now: .seconds(2)).isEmpty, "older than the history keeps")

        var rtx = RetransmissionHistory(mode: .rtx(payloadType: 97, ssrc: 6, firstSequenceNumber: 500))
        let original = RTPPacket(marker: true, payloadType: 96, sequenceNumber: 42, timestamp: 9000, ssrc: 5, payload: ByteBuffer(bytes: [9, 8, 7]))
        rtx.record(original, now: .zero)
        let wrapped = try #require(rtx.retransmissions(for: [42], now: .milliseconds(20)).first)
        #expect(wrapped.ssrc == 6 && wrapped.payloadType == 97 && wrapped.sequenceNumber == 500 && wrapped.timestamp == 9000)
        #expect(wrapped.payload.readableBytesView.elementsEqual([0, 42, 9, 8, 7]), "OSN first, then the original payload")
        let parsed = try RTPPacket(parsing: wrapped.serialized())
        #expect(try RTXPacket.unwrap(parsed, originalPayloadType: 96, originalSSRC: 5) == original)
        expectError(RTPError.Code.truncated) {
            _ = try RTXPacket.unwrap(RTPPacket(payloadType: 97, sequenceNumber: 1, timestamp: 0, ssrc: 6, payload: ByteBuffer(bytes: [1])),
                                     originalPayloadType: 96, originalSSRC: 5)
        }
    }

    @Test("RFC 3550 §A.3/§A.8: loss, fraction lost and jitter of a stream with a gap and a wrap")
    func receptionStatistics() {
        var statistics = ReceptionStatistics(ssrc: 1, clockRate: 90_000)
        // 20 packets 10 ms apart, sequence wrapping, packet 65535 lost; arrivals jitter by ±1 ms.
        var sequence: UInt16 = 65_530
        for index in 0..<20 {
            defer { sequence &+= 1 }
            if sequence == 65_535 { continue }
            let wobble = index % 2 == 0 ? 1 : -1
            statistics.record(sequenceNumber: sequence, timestamp: UInt32(index * 900), arrival: .milliseconds(index * 10 + wobble))
        }
        #expect(statistics.expected == 20)
        #expect(statistics.cumulativeLost == 1)
        #expect(statistics.extendedHighestSequenceNumber == 0x1_0000 + 13)
        let block = statistics.makeReportBlock()
        #expect(block.fractionLost == UInt8(256 / 20))
        #expect(block.cumulativeLost == 1)
        // |D| is 2 ms = 180 units each time; the estimate climbs toward it.
        #expect(statistics.jitter > 100 && statistics.jitter < 180)
        #expect(statistics.makeReportBlock().fractionLost == 0, "nothing new since the last report")
    }

    @Test("jitter buffer: a packet lost for good leads to a PLI; frames wait for the keyframe")
    func lostForGoodLeadsToPLI() throws {
        let encoder = try VP8Encoder(.init(width: 160, height: 128, bitrateKbps: 300))
        var packetizer = try VP8Packetizer(payloadType: 96, ssrc: 1)
        var buffer = VideoJitterBuffer(configuration: .init(nack: .init(maxRetries: 2), pliInterval: .milliseconds(100)))
        buffer.roundTripTime = .milliseconds(20)
        var now = Duration.zero
        var delivered: [UInt32] = []
        var plis = 0
        for number in 0..<20 {
            let picture = try TestPatternVideoSource.picture(number: UInt32(number), width: 160, height: 128, sendTimeMilliseconds: 0)
            let timestamp = UInt32(number * 3000)
            guard let encoded = try encoder.encode(picture, timestamp: timestamp) else { continue }
            let packets = packetizer.packetize(frame: encoded.data, timestamp: timestamp)
            for packet in packets where number != 5 {
                delivered += buffer.insert(packet, now: now).map(\.timestamp)
            }
            for _ in 0..<33 {
                now += .milliseconds(1)
                if buffer.poll(now: now).pictureLossIndication {
                    plis += 1
                    encoder.requestKeyframe()
                }
            }
        }
        #expect(plis >= 1)
        #expect(buffer.counters.lostForGood >= 1)
        #expect(buffer.counters.nackRequests >= 2)
        #expect(delivered.contains(12_000) && !delivered.contains(15_000), "frames 0–4, then nothing that references frame 5")
        #expect(buffer.counters.keyframes >= 2, "the keyframe after the PLI was delivered")
        let last = delivered.last.map(Int.init)
        #expect(last == 57_000, "the stream runs to its last frame")
    }

    @Test("RFC 3550 §6.4.1: RTT = arrival − LSR − DLSR, from a sender report echoed in a receiver report")
    func roundTripTime() throws {
        let sender = try VideoSendStream(encoder: .init(width: 160, height: 128), ssrc: 0xAA)
        var reception = ReceptionStatistics(ssrc: 0xAA, clockRate: 90_000)
        reception.record(sequenceNumber: 1, timestamp: 0, arrival: .seconds(100))
        // The SR leaves at 100.000 s and takes 30 ms; the receiver holds it 250 ms; the RR takes 30 ms back.
        guard case .senderReport(let report) = sender.senderReport(now: .seconds(100)) else { throw MediaError(.invalidArgument, "no SR") }
        reception.senderReportReceived(report, arrival: .milliseconds(100_030))
        let block = reception.makeReportBlock(now: .milliseconds(100_280))
        #expect(block.lastSenderReport == report.compactNTP)
        #expect(block.delaySinceLastSenderReport == 16_384, "250 ms in 1/65536 s")
        _ = sender.handle(.receiverReport(.init(ssrc: 0xBB, reports: [block])), now: .milliseconds(100_310))
        let rtt = try #require(sender.measuredRoundTripTime)
        #expect(abs(rtt.milliseconds - 60) < 0.1)
        #expect(sender.roundTripTime == rtt, "the retransmission guard follows the measurement")
        var estimator = RoundTripTimeEstimator()
        #expect(estimator.update(with: RTCPReportBlock(ssrc: 1, fractionLost: 0, cumulativeLost: 0, extendedHighestSequenceNumber: 0, jitter: 0,
                                                       lastSenderReport: 0, delaySinceLastSenderReport: 0), arrival: .seconds(5)) == nil,
                "no SR echoed yet")
    }

    @Test("a frame the decoder rejects leads to a PLI; the keyframe that answers it is decoded (RFC 4585 §6.3.1)")
    func decodeFailureLeadsToPLI() throws {
        let sender = try VideoSendStream(encoder: .init(width: 160, height: 128, bitrateKbps: 300), ssrc: 0xAA)
        let receiver = try VideoReceiveStream(ssrc: 0xAA, localSSRC: 0xBB)
        var source = try TestPatternVideoSource(width: 160, height: 128)
        // The first keyframe arrives with its VP8 start code damaged (RFC 6386 §9.1: 9d 01 2a).
        var packets = try sender.send(source.nextFrame(sendTimeMilliseconds: 0), timestamp: 0, now: .zero)
        var payload = packets[0].payload
        let offset = payload.readerIndex + VP8PayloadDescriptor(startOfPartition: true, pictureID: 0).encodedSize + 3
        payload.setBytes([0, 0, 0], at: offset)
        packets[0].payload = payload
        var pictures = packets.flatMap { receiver.receive($0, now: .milliseconds(5)) }
        #expect(pictures.isEmpty)
        let feedback = receiver.feedback(now: .milliseconds(6))
        #expect(feedback.contains { if case .pictureLossIndication(let pli) = $0 { pli.mediaSSRC == 0xAA } else { false } })
        for packet in feedback { _ = sender.handle(packet, now: .milliseconds(10)) }
        #expect(sender.counters.keyframeRequests == 1)
        let next = try sender.send(source.nextFrame(sendTimeMilliseconds: 33), timestamp: 3000, now: .milliseconds(33))
        pictures = next.flatMap { receiver.receive($0, now: .milliseconds(40)) }
        #expect(pictures.count == 1 && pictures.first?.pattern?.frameNumber == 1)
        #expect(sender.counters.keyframes == 2)
        #expect(receiver.currentStatistics.decodeErrors == 1 && receiver.currentStatistics.pictureLossIndications == 1)
    }

    @Test("simulated link: capacity spaces packets, the drop-tail queue overflows, delay is added")
    func simulatedLink() {
        var link = SimulatedLink<Int>(configuration: .init(capacityBitsPerSecond: 800_000, queueLimitBytes: 5_000, delay: .milliseconds(20)))
        // 10 packets of 1000 bytes at once: 10 ms each on an 800 kb/s link; the queue holds 5.
        for index in 0..<10 { link.send(index, size: 1_000, now: .zero) }
        #expect(link.counters.droppedByQueue == 5)
        #expect(link.receive(now: .milliseconds(29)).isEmpty)
        let arrived = link.receive(now: .seconds(1))
        #expect(arrived.map(\.payload) == [0, 1, 2, 3, 4])
        #expect(arrived.map { Int($0.arrival.milliseconds.rounded()) } == [30, 40, 50, 60, 70])
    }
}
