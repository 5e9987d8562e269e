import NIOCore
import Testing
@testable import Media
import RTP

/// Streams a participant adds or stops after it joined (docs/rooms.md "Added streams"): the core
/// alone, with the three participants of ``SelectiveForwarderTests``.
@Suite("Selective forwarder: a participant adds a stream (a screen share) and stops it")
struct AddedSourceForwarderTests {
    static let screen = ForwardedSource(kind: .video, ssrc: 1100, payloadType: SelectiveForwarderTests.videoPT,
                                        retransmission: .init(payloadType: SelectiveForwarderTests.rtxPT, ssrc: 1101))

    @Test("an added stream reaches every other participant once bound; its packets are refused before it is added and after it stopped, with a BYE")
    func addAndRemove() throws {
        var forwarder = try SelectiveForwarderTests.call()
        // Not declared yet: refused as any SSRC the participant never announced.
        #expect(throws: MediaError.self) { try forwarder.forward(SelectiveForwarderTests.video(1, ssrc: 1100), from: "alice", now: .milliseconds(1)) }

        try forwarder.addSource(Self.screen, to: "alice")
        for receiver in ["bob", "carol"] {
            let stream = try #require(forwarder.outgoingStreams(to: receiver).first { $0.sourceSSRC == 1100 }, "\(receiver) has no stream of the share")
            #expect(stream.from == "alice" && stream.kind == .video && stream.binding == nil)
            try forwarder.bind(receiver: receiver, ssrc: stream.ssrc, ForwardingBinding(mid: "9", payloadType: 100, retransmissionPayloadType: 101))
        }
        #expect(!forwarder.outgoingStreams(to: "alice").contains { $0.sourceSSRC == 1100 })
        let outputs = try forwarder.forward(SelectiveForwarderTests.video(2, ssrc: 1100), from: "alice", now: .milliseconds(2))
        #expect(SelectiveForwarderTests.rtp(outputs, to: "bob").count == 1 && SelectiveForwarderTests.rtp(outputs, to: "carol").count == 1)

        // Stopped: a BYE for the stream and its RTX to each receiver that had it bound; then refused.
        let toBob = try #require(forwarder.outgoingStreams(to: "bob").first { $0.sourceSSRC == 1100 })
        let stopped = forwarder.removeSource(1100, of: "alice")
        let bye = SelectiveForwarderTests.rtcp(stopped, to: "bob").compactMap { if case .goodbye(let bye) = $0 { bye } else { nil } }
        #expect(bye.first?.ssrcs.contains(toBob.ssrc) == true && bye.first?.ssrcs.count == 2, "\(stopped)")
        #expect(!forwarder.outgoingStreams(to: "bob").contains { $0.sourceSSRC == 1100 })
        #expect(throws: MediaError.self) { try forwarder.forward(SelectiveForwarderTests.video(3, ssrc: 1100), from: "alice", now: .milliseconds(3)) }
        // Its first streams are untouched.
        #expect(SelectiveForwarderTests.rtp(try forwarder.forward(SelectiveForwarderTests.video(4), from: "alice", now: .milliseconds(4)), to: "bob").count == 1)
    }

    @Test("an added stream is refused for an SSRC in use, simulcast, or past the bound of streams per participant")
    func bounds() throws {
        var forwarder = try SelectiveForwarderTests.call(ForwardingConfiguration(maxSourcesPerParticipant: 3))
        // bob's SSRC: SSRCs are unique in the call (RFC 3550 §8).
        #expect(throws: MediaError.self) { try forwarder.addSource(ForwardedSource(kind: .video, ssrc: 2001, payloadType: 96), to: "alice") }
        #expect(throws: MediaError.self) { try forwarder.addSource(.simulcast(rids: ["q", "f"], payloadType: 96, retransmissionPayloadType: nil), to: "alice") }
        try forwarder.addSource(Self.screen, to: "alice")
        #expect(throws: MediaError.self) { try forwarder.addSource(ForwardedSource(kind: .audio, ssrc: 1200, payloadType: 111), to: "alice") }
        // Stopping frees the place.
        _ = forwarder.removeSource(1100, of: "alice")
        try forwarder.addSource(ForwardedSource(kind: .audio, ssrc: 1200, payloadType: 111), to: "alice")
    }
}
