import Testing
@testable import Media
import SDP

/// The forwarder's multistream offer (docs/rooms.md): negotiated with the call's own answer code,
/// it gives the forwarder what it binds and the participant what it decodes.
@Suite("Forwarded offer: one m-section per stream, answered by a participant as any offer")
struct ForwardedOfferTests {
    @Test("carol's offer from the forwarder: her own audio and video recvonly, then alice's and bob's sendonly with their SSRCs; both sides read the same streams")
    func negotiate() throws {
        var forwarder = SelectiveForwarder()
        try forwarder.addParticipant("alice", sources: [.init(kind: .audio, ssrc: 11, payloadType: 111), .init(kind: .video, ssrc: 12, payloadType: 96)], extensions: .init(), now: .zero)
        try forwarder.addParticipant("bob", sources: [.init(kind: .audio, ssrc: 21, payloadType: 111), .init(kind: .video, ssrc: 22, payloadType: 96)], extensions: .init(), now: .zero)
        try forwarder.addParticipant("carol", sources: [], extensions: .init(), now: .zero)
        let streams = forwarder.outgoingStreams(to: "carol")
        let fingerprint = SDPFingerprint(hashFunction: "sha-256", digest: [UInt8](repeating: 7, count: 32))
        let offer = try JSEPOffer.makeForwarded(
            local: .init(iceUsernameFragment: "fwd1", icePassword: "forwarder-password-0123", fingerprint: fingerprint, cname: "forwarder",
                         streamID: "forwarder", kinds: [], sending: [:], sessionID: 1),
            forwarded: streams.map { JSEPOffer.ForwardedStream(kind: $0.kind.rawValue, ssrc: $0.ssrc, retransmissionSSRC: $0.retransmissionSSRC, streamID: $0.from) })
        let received = try SessionDescription(parsing: offer.serialized)
        #expect(received.media.map(\.direction) == [.recvonly, .recvonly, .sendonly, .sendonly, .sendonly, .sendonly])
        #expect(received.media.compactMap(\.mid) == ["0", "1", "2", "3", "4", "5"])
        #expect(received.bundleGroup == ["0", "1", "2", "3", "4", "5"])

        let answer = try JSEPAnswer.make(offer: received, local: .init(
            iceUsernameFragment: "car1", icePassword: "carol-password-01234567", fingerprint: fingerprint, cname: "carol", streamID: "carol",
            sending: ["audio": (31, nil), "video": (32, 33)], sessionID: 2))
        let answerReceived = try SessionDescription(parsing: answer.serialized)

        // Carol's side: she sends on the first two sections and receives one stream per other section.
        let atCarol = try NegotiatedStream.fromAnswering(offer: received, answer: answer)
        #expect(atCarol.prefix(2).allSatisfy { $0.sends && !$0.receives })
        let incoming = atCarol.dropFirst(2)
        #expect(incoming.allSatisfy { $0.receives && !$0.sends })
        #expect(Set(incoming.flatMap(\.remoteSSRCs)) == Set(streams.flatMap { [$0.ssrc] + ($0.retransmissionSSRC.map { [$0] } ?? []) }))

        // The forwarder's side: carol's sources from the first two sections, a binding per other section.
        let atForwarder = try NegotiatedStream.fromOffering(offer: received, answer: answerReceived)
        #expect(atForwarder.count == 6)
        #expect(atForwarder[0].remoteSSRCs == [31] && atForwarder[1].remoteSSRCs == [32, 33])
        for (stream, negotiated) in zip(streams, atForwarder.dropFirst(2)) {
            #expect(negotiated.kind == stream.kind.rawValue && negotiated.sends)
            try forwarder.bind(receiver: "carol", ssrc: stream.ssrc,
                               ForwardingBinding(mid: try #require(negotiated.mid), payloadType: negotiated.payloadType, retransmissionPayloadType: negotiated.rtxPayloadType))
        }
        #expect(forwarder.outgoingStreams(to: "carol").allSatisfy { $0.binding != nil })
        #expect(forwarder.outgoingStreams(to: "carol").filter { $0.kind == .video }.allSatisfy { $0.binding?.retransmissionPayloadType != nil })
    }
}
