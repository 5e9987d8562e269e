import Media
@testable import MeshNode
import NIOCore
import RTP
import Testing

/// The forwarder's transport-cc feedback on an uplink (draft-holmer-rmcat-transport-wide-cc-extensions-01
/// §3.1) is made as packets arrive, at most every 50 ms, and covers every packet since the last
/// one: Chromium counts what no feedback covered yet as in flight and cuts its rate when that
/// passes its congestion window (docs/rooms.md "Chromium's top layer").
@Suite("UplinkTransportFeedback: feedback every 50 ms as packets arrive, every packet covered")
struct UplinkTransportFeedbackTests {
    static let sequenceExtension: UInt8 = 3

    static func packet(transportSequence: UInt16, ssrc: UInt32 = 1001, paddingOnly: Bool = false) throws -> ByteBuffer {
        var sequence = ByteBuffer()
        sequence.writeInteger(transportSequence)
        let packet = RTPPacket(payloadType: 96, sequenceNumber: transportSequence, timestamp: 0, ssrc: ssrc,
                               headerExtension: .compact([RTPHeaderExtensionElement(id: sequenceExtension, data: sequence)]),
                               payload: paddingOnly ? ByteBuffer() : ByteBuffer(bytes: [1, 2, 3]), paddingLength: paddingOnly ? 200 : 0)
        return try packet.serialized()
    }

    @Test("a packet every 10 ms: a feedback at 0, 50, 100 ms …, each with the packets since the last, padding-only ones too")
    func everyFiftyMilliseconds() throws {
        let epoch = ContinuousClock.now
        var feedback = UplinkTransportFeedback(reporterSSRC: 77, extensionID: Self.sequenceExtension, epoch: epoch)
        var sent: [(at: Int, statuses: Int)] = []
        for index in 0..<21 {
            let bytes = try Self.packet(transportSequence: UInt16(index), ssrc: index % 3 == 0 ? 2002 : 1001, paddingOnly: index % 3 == 0)
            if let packets = feedback.received(bytes, at: epoch + .milliseconds(index * 10), now: epoch + .milliseconds(index * 10)) {
                let report = try #require(packets.compactMap { if case .transportFeedback(let report) = $0 { report } else { nil } }.first)
                guard case .receiverReport = packets.first else { Issue.record("a compound RTCP packet starts with a report (RFC 3550 §6.1)"); return }
                sent.append((index * 10, report.packets.count))
            }
        }
        #expect(sent.map(\.at) == [0, 50, 100, 150, 200], "\(sent)")
        #expect(sent.map(\.statuses).reduce(0, +) == 21, "every packet reported once: \(sent)")
        #expect(feedback.statistics.lost == 0 && feedback.statistics.received == 21)
    }

    @Test("packets that arrived 10 ms apart but are read in one burst 300 ms later: one feedback, due by the read, reporting the arrivals and a 300+ ms delay")
    func arrivalsReadLate() throws {
        let epoch = ContinuousClock.now
        var feedback = UplinkTransportFeedback(reporterSSRC: 77, extensionID: Self.sequenceExtension, epoch: epoch)
        // The first packet was read on time (a feedback went out then); the next ten sat in the queues.
        _ = try #require(feedback.received(try Self.packet(transportSequence: 0), at: epoch, now: epoch))
        let read = epoch + .milliseconds(400)
        var reports: [RTCPTransportFeedback] = []
        for index in 1...10 {
            let packets = feedback.received(try Self.packet(transportSequence: UInt16(index)), at: epoch + .milliseconds(90 + index * 10), now: read)
            reports += (packets ?? []).compactMap { if case .transportFeedback(let report) = $0 { report } else { nil } }
        }
        let report = try #require(reports.first)
        #expect(reports.count == 1 && report.packets.count == 1, "due by the read, at the first packet read late: \(reports)")
        // The late packets, covered by the next feedback, keep their 10 ms (40 ticks) spacing.
        for index in 11...12 {
            let packets = feedback.received(try Self.packet(transportSequence: UInt16(index)), at: epoch + .milliseconds(90 + index * 10), now: read + .milliseconds(60))
            reports += (packets ?? []).compactMap { if case .transportFeedback(let report) = $0 { report } else { nil } }
        }
        let later = try #require(reports.dropFirst().first)
        #expect(later.baseSequenceNumber == 2 && later.packets.dropFirst().allSatisfy { $0 == .received(delta: 40) }, "\(later.packets)")
        // The log tells how long the queues held the oldest packet of each feedback.
        #expect(feedback.statistics.delays.map { $0 / .milliseconds(1) } == [0, 300, 350], "\(feedback.statistics.delays)")
    }

    @Test("no transport-cc negotiated, or a packet without the sequence number: no feedback")
    func withoutSequence() throws {
        let epoch = ContinuousClock.now
        var none = UplinkTransportFeedback(reporterSSRC: 77, extensionID: nil, epoch: epoch)
        #expect(none.received(try Self.packet(transportSequence: 1), at: epoch, now: epoch) == nil)
        var other = UplinkTransportFeedback(reporterSSRC: 77, extensionID: 9, epoch: epoch)
        #expect(other.received(try Self.packet(transportSequence: 1), at: epoch, now: epoch) == nil)
        #expect(other.received(ByteBuffer(bytes: [0x80, 0x60]), at: epoch, now: epoch) == nil, "a truncated packet is ignored")
    }
}
