import Testing
import TestSupport
@testable import SDP

/// The other direction of simulcast (docs/rooms.md "Simulcast and layer choice"): in `meshnode
/// serve` the participant calls the forwarder, so the participant's offer sends the layers
/// (`a=simulcast:send`, RFC 8853 §5.2) and the forwarder's answer receives them (§5.3) — ours,
/// and the form Chromium produces (rids without SSRCs, the RFC 8852 rid extensions).
@Suite("Participant simulcast offers: a=simulcast:send in the offer, recv in the forwarder's answer")
struct ParticipantSimulcastOfferTests {
    static let fingerprint = SDPFingerprint(hashFunction: "sha-256", digest: Array(0..<32))

    /// A CLI participant's offer to the forwarder: audio and three video layers.
    static func participantOffer(simulcast: [String] = ["q", "h", "f"]) throws -> SessionDescription {
        try JSEPOffer.make(local: .init(
            iceUsernameFragment: "alic", icePassword: "participant-password-01", fingerprint: fingerprint, cname: "alice", streamID: "alice",
            kinds: ["audio", "video"], sending: ["audio": (1111, nil), "video": (2222, 3333)], sessionID: 9, sendSimulcast: simulcast))
    }

    /// The forwarder's answer: receive-only, taking the layers.
    static func forwarderAnswer(to offer: SessionDescription, receivesSimulcast: Bool = true) throws -> SessionDescription {
        try JSEPAnswer.make(offer: offer, local: .init(
            iceUsernameFragment: "fwdr", icePassword: "forwarder-password-0123", fingerprint: fingerprint, cname: "forwarder",
            streamID: "forwarder", sending: [:], sessionID: 4242, receivesSimulcast: receivesSimulcast))
    }

    @Test("our offer sends q;h;f with a=rid send lines and the rid extensions, and names no video SSRCs (RFC 8853 §5.2, RFC 8852)")
    func ourOffer() throws {
        let offer = try SessionDescription(parsing: try Self.participantOffer().serialized)
        let video = try #require(offer.media.first { $0.kind == "video" })
        #expect(video.simulcastAttribute?.description == "send q;h;f")
        #expect(try video.simulcastRIDs(.send) == ["q", "h", "f"])
        #expect(video.restrictionIdentifiers.map(\.description) == ["q send", "h send", "f send"])
        #expect(video.extensionMaps.map(\.uri).contains(RTPHeaderExtensionURI.rtpStreamID))
        #expect(video.extensionMaps.map(\.uri).contains(RTPHeaderExtensionURI.repairedRTPStreamID))
        #expect(video.ssrcs.isEmpty, "the layers are told apart by their rid")
        #expect(video.direction == .sendrecv)
        #expect(offer.media[0].ssrcs == [1111] && offer.media[0].simulcastAttribute == nil, "audio is one stream")
        // Without simulcast (a pairwise call) the same offer names its one video SSRC and its RTX.
        let single = try Self.participantOffer(simulcast: [])
        #expect(single.media[1].simulcastAttribute == nil && single.media[1].ssrcs == [2222, 3333])
        #expect(!single.media[1].extensionMaps.map(\.uri).contains(RTPHeaderExtensionURI.rtpStreamID))
    }

    @Test("an offer refuses simulcast rids that are not 1–3 distinct rid-ids (RFC 8851 §10)",
          arguments: [["q", "q"], ["q", "h", "f", "x"], ["q h"], [""], ["ü"]])
    func badRIDs(rids: [String]) {
        #expect { try Self.participantOffer(simulcast: rids) } throws: { ($0 as? SDPError)?.code == .invalidArgument }
    }

    @Test("the forwarder's answer receives the offered layers: a=rid recv, a=simulcast:recv q;h;f, recvonly (RFC 8853 §5.3)")
    func forwarderAnswer() throws {
        let answer = try SessionDescription(parsing: try Self.forwarderAnswer(to: try Self.participantOffer()).serialized)
        let video = try #require(answer.media.first { $0.kind == "video" })
        #expect(video.direction == .recvonly)
        #expect(video.simulcastAttribute?.description == "recv q;h;f")
        #expect(try video.simulcastRIDs(.recv) == ["q", "h", "f"])
        #expect(video.restrictionIdentifiers.allSatisfy { $0.direction == .recv })
        #expect(video.extensionMaps.contains { $0.uri == RTPHeaderExtensionURI.rtpStreamID && $0.id == JSEPOffer.rtpStreamIDExtensionID })
        #expect(answer.media[0].simulcastAttribute == nil)
        // A side that does not take simulcast answers as before: the offerer then sends one stream (§5.3).
        let plain = try Self.forwarderAnswer(to: try Self.participantOffer(), receivesSimulcast: false)
        #expect(plain.media[1].simulcastAttribute == nil && plain.media[1].restrictionIdentifiers.isEmpty)
    }

    @Test("Chromium 156's captured simulcast offer: the forwarder receives q;h;f under Chromium's own extension ids")
    func chromiumOffer() throws {
        let offer = try SessionDescription(parsing: try Fixtures.text("chromium156-captured-simulcast-offer.sdp"))
        let answer = try SessionDescription(parsing: try Self.forwarderAnswer(to: offer).serialized)
        let video = try #require(answer.media.first { $0.kind == "video" })
        #expect(video.direction == .recvonly)
        #expect(try video.simulcastRIDs(.recv) == ["q", "h", "f"])
        #expect(video.rtpMaps.first?.encoding == "VP8")
        let ids = Dictionary(video.extensionMaps.map { ($0.uri, $0.id) }, uniquingKeysWith: { first, _ in first })
        #expect(ids[RTPHeaderExtensionURI.rtpStreamID] == 10 && ids[RTPHeaderExtensionURI.repairedRTPStreamID] == 11)
        #expect(ids[RTPHeaderExtensionURI.mid] == 4 && ids[RTPHeaderExtensionURI.transportWideCC] == 3)
        #expect(answer.media.first { $0.kind == "audio" }?.direction == .recvonly)
    }

    /// The Chromium offer with its video section's lines edited.
    static func chromiumOffer(_ edit: (inout [String]) -> Void) throws -> SessionDescription {
        // The capture has CRLF line ends (RFC 8866 §5); "\r\n" is one Character in Swift.
        var lines = try Fixtures.text("chromium156-captured-simulcast-offer.sdp").split(whereSeparator: \.isNewline).map(String.init)
        edit(&lines)
        return try SessionDescription(parsing: lines.joined(separator: "\r\n") + "\r\n")
    }

    @Test("an offer that sends simulcast without the rtp-stream-id extension is refused: its layers could not be told apart (RFC 8852 §3.1)")
    func withoutRIDExtension() throws {
        let offer = try Self.chromiumOffer { lines in lines.removeAll { $0.hasPrefix("a=extmap:10 ") } }
        #expect { try Self.forwarderAnswer(to: offer) } throws: {
            let error = $0 as? SDPError
            return error?.code == .negotiationFailed && error?.reason.contains("rtp-stream-id") == true
        }
    }

    @Test("a layer restricted to another codec (pt=) is left out of the answer (RFC 8851 §6); none left is refused")
    func restrictedLayer() throws {
        let offer = try Self.chromiumOffer { lines in
            if let index = lines.firstIndex(where: { $0.hasPrefix("a=rid:f send") }) { lines[index] = "a=rid:f send pt=102" }
        }
        let answer = try Self.forwarderAnswer(to: offer)
        #expect(try answer.media[1].simulcastRIDs(.recv) == ["q", "h"])
        let none = try Self.chromiumOffer { lines in
            for index in lines.indices where lines[index].hasPrefix("a=rid:") { lines[index] += " pt=102" }
        }
        #expect { try Self.forwarderAnswer(to: none) } throws: { ($0 as? SDPError)?.code == .negotiationFailed }
    }

    @Test("malformed simulcast in an offer is refused with sdpSyntax and the reason", arguments: [
        ("a=simulcast:send q;h;f", "a=simulcast:send q;h;f;x"),  // x has no a=rid line
        ("a=rid:h send", "a=rid:h recv"),  // a=rid of the other direction
        ("a=rid:h send", "a=rid:q send"),  // q declared twice
    ])
    func malformed(replacing: String, with replacement: String) throws {
        let offer = try Self.chromiumOffer { lines in
            if let index = lines.firstIndex(of: replacing) { lines[index] = replacement }
        }
        #expect { try Self.forwarderAnswer(to: offer) } throws: { ($0 as? SDPError)?.code == .sdpSyntax }
    }

    @Test("unparsable rid and simulcast lines are refused when the offer is read", arguments: [
        "a=simulcast:send q;;h", "a=simulcast:sendrecv q", "a=rid:q both", "a=rid:q/x send", "a=simulcast:send q;h;q",
    ])
    func unparsable(line: String) throws {
        #expect { try Self.chromiumOffer { lines in lines.append(line) } } throws: { ($0 as? SDPError)?.code == .sdpSyntax }
    }
}
