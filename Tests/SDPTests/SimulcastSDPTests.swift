import Testing
import TestSupport
@testable import SDP

/// `a=rid` (RFC 8851) and `a=simulcast` (RFC 8853) in offers and answers: the forwarder's offer
/// asks for three layers, a participant (ours, or Chromium) answers `send` with them.
@Suite("Simulcast SDP: a=rid and a=simulcast, strict parsing, the forwarder's offer and Chromium's answer")
struct SimulcastSDPTests {
    static let fingerprint = SDPFingerprint(hashFunction: "sha-256", digest: Array(0..<32))

    /// The forwarder's offer to a participant that asks for simulcast (what `forwarder-simulcast-offer.sdp` holds).
    static func forwarderOffer() throws -> SessionDescription {
        try JSEPOffer.makeForwarded(
            local: .init(iceUsernameFragment: "fwdr", icePassword: "forwarder-password-0123", fingerprint: fingerprint, cname: "forwarder",
                         streamID: "forwarder", kinds: [], sending: [:], sessionID: 4242),
            forwarded: [], receiveSimulcast: ["q", "h", "f"])
    }

    @Test("a=rid and a=simulcast parse and serialise back to the same text (RFC 8851 §10, RFC 8853 §5.1)")
    func roundTrip() throws {
        for text in ["rid:q send", "rid:hi recv pt=96,97;max-width=1280;max-height=720", "rid:a-b_1 send max-fps=30;depend=q",
                     "simulcast:send q;h;f", "simulcast:recv f;~h", "simulcast:send 1,2;3 recv 4", "simulcast:recv q;h;f send x"] {
            let attribute = try SDPAttribute(parsing: Substring(text))
            #expect(attribute.text == text)
        }
        guard case .rid(let rid) = try SDPAttribute(parsing: "rid:hi recv pt=96,97;max-width=1280") else { Issue.record("not a rid"); return }
        #expect(rid.id == "hi" && rid.direction == .recv && rid.payloadTypes == [96, 97])
        #expect(rid.restrictions.map(\.name) == ["max-width"] && rid.restrictions.map(\.value) == ["1280"])
        guard case .simulcast(let simulcast) = try SDPAttribute(parsing: "simulcast:send 1,2;~3 recv 4") else { Issue.record("not simulcast"); return }
        #expect(simulcast.send == [[.init(rid: "1"), .init(rid: "2")], [.init(rid: "3", paused: true)]])
        #expect(simulcast.recv == [[.init(rid: "4")]])
    }

    @Test("malformed a=rid and a=simulcast are refused with sdpSyntax and the reason", arguments: [
        "rid:", "rid:q", "rid:q sideways", "rid:q send extra words", "rid:q!x send", "rid:abcdefghijklmnopq send",
        "rid:q send pt=300", "rid:q send pt=", "rid:q send max-width=wide", "rid:q send max-width=-5", "rid:q send =5",
        "rid:q send pt=96;pt=97", "simulcast:", "simulcast:send", "simulcast:both q", "simulcast:send q;q", "simulcast:send q recv q",
        "simulcast:send q send h", "simulcast:send q;;h", "simulcast:send ~", "simulcast:send q recv", "simulcast:send q  recv h",
    ])
    func malformed(_ text: String) {
        #expect { try SDPAttribute(parsing: Substring(text)) } throws: { error in
            (error as? SDPError)?.code == .sdpSyntax
        }
    }

    @Test("a section's simulcast rids are checked against its a=rid lines (RFC 8853 §5.1, RFC 8851 §4)")
    func consistency() throws {
        func section(_ lines: [String]) throws -> MediaDescription {
            MediaDescription(kind: "video", formats: ["96"], attributes: try lines.map { try SDPAttribute(parsing: Substring($0)) })
        }
        #expect(try section(["rid:q send", "rid:h send", "simulcast:send q;h"]).simulcastRIDs(.send) == ["q", "h"])
        #expect(try section(["rid:q send", "rid:h send", "simulcast:send q;~h"]).simulcastRIDs(.send) == ["q"], "a paused stream is not sent")
        #expect(try section(["rid:q send"]).simulcastRIDs(.send) == [], "no a=simulcast: no simulcast")
        #expect(try section(["rid:q recv", "simulcast:recv q"]).simulcastRIDs(.send) == [])
        let broken: [[String]] = [
            ["rid:q send", "simulcast:send q;h"],  // h has no a=rid
            ["rid:q recv", "simulcast:send q"],  // a=rid of the other direction
            ["rid:q send", "rid:q send", "simulcast:send q"],  // declared twice
            ["rid:q send", "simulcast:send q", "simulcast:send q"],  // two a=simulcast
        ]
        for lines in broken {
            #expect(throws: SDPError.self, "\(lines)") { try section(lines).simulcastRIDs(.send) }
        }
    }

    @Test("the forwarder's offer asks for simulcast recv q;h;f in the participant's video section; the fixture is exactly what it writes")
    func forwarderOffer() throws {
        let offer = try Self.forwarderOffer()
        let video = offer.media[1]
        #expect(video.direction == .recvonly)
        #expect(try video.simulcastRIDs(.recv) == ["q", "h", "f"])
        #expect(video.restrictionIdentifiers.map(\.direction) == [.recv, .recv, .recv])
        #expect(video.extensionMaps.map(\.uri).contains(RTPHeaderExtensionURI.rtpStreamID))
        #expect(video.extensionMaps.map(\.uri).contains(RTPHeaderExtensionURI.repairedRTPStreamID))
        #expect(offer.media[0].simulcastAttribute == nil, "audio is not simulcast")
        // The capture script gave Chromium this very text.
        #expect(try Fixtures.text("forwarder-simulcast-offer.sdp") == offer.serialized)
        #expect(try SessionDescription(parsing: offer.serialized) == offer)
        #expect(throws: SDPError.self) {
            try JSEPOffer.makeForwarded(local: .init(iceUsernameFragment: "fwdr", icePassword: "forwarder-password-0123", fingerprint: Self.fingerprint,
                                                     cname: "f", streamID: "f", kinds: [], sending: [:], sessionID: 1),
                                        forwarded: [], receiveSimulcast: ["q", "q"])
        }
    }

    @Test("meshnode answers the forwarder's offer with simulcast send q;h;f and no video SSRCs (the rids tell the layers apart)")
    func ourAnswer() throws {
        let offer = try SessionDescription(parsing: try Self.forwarderOffer().serialized)
        let answer = try JSEPAnswer.make(offer: offer, local: .init(
            iceUsernameFragment: "mEsH", icePassword: "0123456789abcdefghijkl", fingerprint: Self.fingerprint, cname: "alice",
            streamID: "alice", sending: ["audio": (1111, nil), "video": (2222, 3333)], sessionID: 7, sendsSimulcast: true))
        let parsed = try SessionDescription(parsing: answer.serialized)
        #expect(parsed.media[1].direction == .sendonly)
        #expect(try parsed.media[1].simulcastRIDs(.send) == ["q", "h", "f"])
        #expect(parsed.media[1].simulcastAttribute?.description == "send q;h;f")
        #expect(parsed.media[1].ssrcs.isEmpty)
        #expect(parsed.media[0].ssrcs == [1111], "audio keeps its SSRC")
        #expect(parsed.media[1].extensionMaps.map(\.id).contains(JSEPOffer.rtpStreamIDExtensionID))
        // Without sendsSimulcast the same offer is answered with one video stream.
        let single = try JSEPAnswer.make(offer: offer, local: .init(
            iceUsernameFragment: "mEsH", icePassword: "0123456789abcdefghijkl", fingerprint: Self.fingerprint, cname: "alice",
            streamID: "alice", sending: ["audio": (1111, nil), "video": (2222, 3333)], sessionID: 7))
        #expect(single.media[1].simulcastAttribute == nil && single.media[1].ssrcs == [2222, 3333])
    }

    @Test("Chromium 156's captured answer to the forwarder's offer sends q;h;f (capture/capture-chromium-simulcast.sh)")
    func chromiumAnswer() throws {
        let answer = try SessionDescription(parsing: try Fixtures.text("chromium156-captured-simulcast-answer.sdp"))
        let video = try #require(answer.media.first { $0.kind == "video" })
        #expect(video.direction == .sendonly)
        #expect(try video.simulcastRIDs(.send) == ["q", "h", "f"])
        #expect(video.restrictionIdentifiers.allSatisfy { $0.direction == .send })
        #expect(video.extensionMaps.contains { $0.uri == RTPHeaderExtensionURI.rtpStreamID })
        #expect(video.ssrcs.isEmpty, "Chromium names no SSRCs for the layers: the forwarder learns them from the rid extension")
        #expect(answer.media.first { $0.kind == "audio" }?.direction == .sendonly)
    }

    @Test("Chromium 156's own simulcast offer (three sendEncodings) parses: send q;h;f")
    func chromiumOffer() throws {
        let offer = try SessionDescription(parsing: try Fixtures.text("chromium156-captured-simulcast-offer.sdp"))
        let video = try #require(offer.media.first { $0.kind == "video" })
        #expect(try video.simulcastRIDs(.send) == ["q", "h", "f"])
    }
}
