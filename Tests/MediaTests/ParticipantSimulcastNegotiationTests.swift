import Foundation
import Testing
import TestSupport
@testable import Media
@testable import SDP

/// What each side makes of a participant's simulcast offer and the forwarder's answer
/// (RFC 8853 §5.3): the participant sends the layers the answer took, the forwarder receives them
/// as a simulcast source whose SSRCs it learns from the rids.
@Suite("Participant simulcast negotiation: the offerer sends the answered layers, the answerer receives them")
struct ParticipantSimulcastNegotiationTests {
    static let fingerprint = SDPFingerprint(hashFunction: "sha-256", digest: Array(0..<32))

    static func offer(simulcast: [String] = ["q", "h", "f"]) throws -> SessionDescription {
        try JSEPOffer.make(local: .init(
            iceUsernameFragment: "alic", icePassword: "participant-password-01", fingerprint: fingerprint, cname: "alice", streamID: "alice",
            kinds: ["audio", "video"], sending: ["audio": (1111, nil), "video": (2222, 3333)], sessionID: 9, sendSimulcast: simulcast))
    }

    static func answer(to offer: SessionDescription, receivesSimulcast: Bool = true) throws -> SessionDescription {
        try JSEPAnswer.make(offer: offer, local: .init(
            iceUsernameFragment: "fwdr", icePassword: "forwarder-password-0123", fingerprint: fingerprint, cname: "forwarder",
            streamID: "forwarder", sending: [:], sessionID: 4242, receivesSimulcast: receivesSimulcast))
    }

    @Test("both sides agree on q;h;f: the participant sends them, the forwarder receives them with the rid extension ids")
    func agree() throws {
        let offer = try Self.offer()
        let answer = try SessionDescription(parsing: try Self.answer(to: offer).serialized)
        let sender = try NegotiatedStream.fromOffering(offer: offer, answer: answer)
        let receiver = try NegotiatedStream.fromAnswering(offer: offer, answer: answer)
        let sent = try #require(sender.first { $0.kind == "video" })
        let received = try #require(receiver.first { $0.kind == "video" })
        #expect(sent.sends && !sent.receives && sent.simulcastRIDs == ["q", "h", "f"])
        #expect(received.receives && !received.sends && received.simulcastRIDs == ["q", "h", "f"])
        #expect(sent.ridExtensionID == UInt8(JSEPOffer.rtpStreamIDExtensionID) && received.ridExtensionID == sent.ridExtensionID)
        #expect(sent.repairedRIDExtensionID == UInt8(JSEPOffer.repairedRTPStreamIDExtensionID))
        #expect(received.remoteSSRCs.isEmpty, "no layer SSRC is named")
        #expect(sender.first { $0.kind == "audio" }?.simulcastRIDs == [])
    }

    @Test("an answer that takes no simulcast makes the offerer send one stream (RFC 8853 §5.3)")
    func declined() throws {
        let offer = try Self.offer()
        let streams = try NegotiatedStream.fromOffering(offer: offer, answer: try Self.answer(to: offer, receivesSimulcast: false))
        #expect(streams.first { $0.kind == "video" }?.simulcastRIDs == [])
        #expect(streams.first { $0.kind == "video" }?.sends == true)
    }

    @Test("an answer that takes a layer the offer did not send is refused with negotiationFailed")
    func foreignLayer() throws {
        let offer = try Self.offer()
        var answer = try Self.answer(to: offer)
        answer.media[1].attributes = answer.media[1].attributes.map { attribute in
            switch attribute {
            case .rid(let rid) where rid.id == "f": .rid(SDPRestrictionIdentifier(id: "x", direction: .recv))
            case .simulcast: .simulcast(SDPSimulcast(recv: [[.init(rid: "q")], [.init(rid: "h")], [.init(rid: "x")]]))
            default: attribute
            }
        }
        #expect { try NegotiatedStream.fromOffering(offer: offer, answer: answer) } throws: { ($0 as? MediaError)?.code == .negotiationFailed }
    }

    @Test("Chromium 156's captured simulcast offer: the forwarder receives q;h;f, learning the SSRCs from rid extension 10")
    func chromium() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("SDPTests/Fixtures/chromium156-captured-simulcast-offer.sdp")
        let offer = try SessionDescription(parsing: try String(contentsOf: url, encoding: .utf8))
        let answer = try Self.answer(to: offer)
        let video = try #require(try NegotiatedStream.fromAnswering(offer: offer, answer: answer).first { $0.kind == "video" })
        #expect(video.receives && video.simulcastRIDs == ["q", "h", "f"])
        #expect(video.ridExtensionID == 10 && video.repairedRIDExtensionID == 11)
        #expect(video.payloadType == 96 && video.rtxPayloadType == 97)
    }
}
