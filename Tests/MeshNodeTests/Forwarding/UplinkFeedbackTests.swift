import Media
@testable import MeshNode
import NIOCore
import RTP
import Testing

/// The forwarder's receiver reports on a participant's uplink (RFC 3550 §6.4.2) cover each
/// simulcast layer by the SSRC the core learned from its rid (RFC 8852): a browser stops writing
/// the rid once a report acknowledged the SSRC, and a layer without a report block has no loss or
/// round-trip time at its sender.
@Suite("UplinkFeedback: a report block per simulcast layer learned by rid, none for RTX or foreign SSRCs")
struct UplinkFeedbackTests {
    static let ridExtension: UInt8 = 10

    static func packet(ssrc: UInt32, sequence: UInt16, rid: String?) -> RTPPacket {
        var payload = ByteBuffer()
        payload.writeBytes([0x90, 0x80, 0x80, 0x01, 0x00, 0x00] + Array(repeating: UInt8(0xAB), count: 200))
        return RTPPacket(marker: true, payloadType: 96, sequenceNumber: sequence, timestamp: UInt32(sequence) * 3000, ssrc: ssrc,
                         headerExtension: rid.map { .compact([RTPHeaderExtensionElement(id: ridExtension, data: ByteBuffer(string: $0))]) },
                         payload: payload)
    }

    @Test("three layers named by rid once, then without it: one report block each; a foreign SSRC gets none")
    func blocksPerLayer() throws {
        let extensions = ForwardingExtensionIDs(rtpStreamID: Self.ridExtension)
        var core = SelectiveForwarder()
        try core.addParticipant("alice", sources: [
            ForwardedSource(kind: .audio, ssrc: 500, payloadType: 111),
            .simulcast(rids: ["q", "h", "f"], payloadType: 96, retransmissionPayloadType: nil),
        ], extensions: extensions, now: .zero)
        var uplink = UplinkFeedback(extensions: extensions)
        // As ForwardedCall does: the core first (it learns the layer), then the uplink, told what the core knows.
        func arrive(_ packet: RTPPacket, at now: Duration) {
            _ = try? core.forward(packet, from: "alice", now: now)
            uplink.received(packet, bytes: 0, source: core.sourceKind(of: packet.ssrc, from: "alice"), now: now)
        }
        for (index, (rid, ssrc)) in [("q", UInt32(1001)), ("h", 1002), ("f", 1003)].enumerated() {
            // The first packets carry the rid, the later ones not (as libwebrtc does once acknowledged).
            for sequence in UInt16(0)..<10 {
                arrive(Self.packet(ssrc: ssrc, sequence: sequence, rid: sequence < 2 ? rid : nil), at: .milliseconds(Int(sequence) * 10 + index))
            }
        }
        var audio = RTPPacket(payloadType: 111, sequenceNumber: 1, timestamp: 960, ssrc: 500, payload: ByteBuffer(bytes: [1, 2, 3]))
        arrive(audio, at: .milliseconds(200))
        audio.sequenceNumber = 2
        arrive(audio, at: .milliseconds(220))
        // Mallory's SSRC, and a layer SSRC without a rid that was never learned: no report.
        arrive(Self.packet(ssrc: 6666, sequence: 1, rid: nil), at: .milliseconds(230))
        arrive(Self.packet(ssrc: 7777, sequence: 1, rid: "x"), at: .milliseconds(240))
        let due = uplink.due(now: .seconds(1))
        let report = try #require(due.compactMap { if case .receiverReport(let report) = $0 { report } else { nil } }.first)
        #expect(report.reports.map(\.ssrc).sorted() == [500, 1001, 1002, 1003])
        #expect(report.reports.allSatisfy { $0.cumulativeLost == 0 })
        #expect(core.sourceKind(of: 1003, from: "alice") == .video && core.sourceKind(of: 6666, from: "alice") == nil)
    }
}
