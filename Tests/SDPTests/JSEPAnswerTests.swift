import Testing
import TestSupport
@testable import SDP

@Suite("JSEP answers (RFC 8829 §5.3.1) to browser offers")
struct JSEPAnswerTests {
    static let local = JSEPAnswer.LocalParameters(
        iceUsernameFragment: "mEsH", icePassword: "0123456789abcdefghijkl",
        fingerprint: SDPFingerprint(hashFunction: "sha-256", digest: Array(0..<32)),
        cname: "meshnode-test", streamID: "meshnode", sending: ["audio": (1111, nil), "video": (2222, 3333)], sessionID: 7)

    @Test("answer to the captured Chromium offer: same sections and mids, chosen codecs only, active DTLS role")
    func answerChromium() throws {
        let offer = try SessionDescription(parsing: try Fixtures.text("chromium156-captured-offer.sdp"))
        let answer = try JSEPAnswer.make(offer: offer, local: Self.local)
        // What goes on the wire parses back to the same description.
        let parsed = try SessionDescription(parsing: answer.serialized)
        #expect(parsed == answer)
        #expect(parsed.bundleGroup == ["0", "1"])
        #expect(parsed.media.map(\.mid) == offer.media.map(\.mid))
        #expect(parsed.media.map(\.formats) == [["111"], ["96", "97"]])
        for section in parsed.media {
            #expect(section.attributes.contains(.setup(.active)))
            #expect(section.attributes.contains(.iceUsernameFragment("mEsH")))
            #expect(section.isRTCPMuxed)
            #expect(section.direction == .sendrecv)
        }
        #expect(parsed.media[1].attributes.contains(.ssrcGroup(SDPSourceGroup(semantics: "FID", ssrcs: [2222, 3333]))))
        #expect(parsed.media[0].ssrcs == [1111])
        #expect(parsed.media[1].feedback(for: 96).count == 5)
        // The offerer, negotiating our answer, lands on the same codecs.
        #expect(try CodecNegotiation.negotiate(offer: parsed).map(\.codec?.payloadType) == [111, 96])
    }

    @Test("answer to the captured Firefox 153 offer (gathered): its payload types, RTX, active DTLS role")
    func answerCapturedFirefox() throws {
        let offer = try SessionDescription(parsing: try Fixtures.text("firefox153-captured-offer-gathered.sdp"))
        let answer = try JSEPAnswer.make(offer: offer, local: Self.local)
        let parsed = try SessionDescription(parsing: answer.serialized)
        #expect(parsed == answer)
        #expect(parsed.bundleGroup == ["0", "1"])
        #expect(parsed.media.map(\.mid) == ["0", "1"])
        #expect(parsed.media.map(\.formats) == [["109"], ["120", "124"]])
        for section in parsed.media {
            #expect(section.attributes.contains(.setup(.active)))
            #expect(section.isRTCPMuxed && section.direction == .sendrecv)
        }
        #expect(parsed.media[0].formatParameters(for: 109)?.values["useinbandfec"] == "1")
        #expect(parsed.media[1].feedback(for: 120).count == 5)
        #expect(parsed.media[1].attributes.contains(.ssrcGroup(SDPSourceGroup(semantics: "FID", ssrcs: [2222, 3333]))))
        #expect(try CodecNegotiation.negotiate(offer: parsed).map(\.codec?.payloadType) == [109, 120])
    }

    @Test("answer to Firefox's max-bundle offer (the page's): its bundle-only video section (port 0, RFC 8843 §7.2.1) is accepted into the bundle, not rejected")
    func answerFirefoxMaxBundle() throws {
        // Captured from the page in Firefox 153 calling a CLI peer (FirefoxCallTests found it:
        // the call had audio only, as our answer gave the video section port 0).
        let offer = try SessionDescription(parsing: try Fixtures.text("firefox153-captured-offer-max-bundle.sdp"))
        #expect(offer.media[1].port == 0 && offer.media[1].isBundleOnly && offer.bundleGroup == ["0", "1"])
        #expect(offer.carriesMedia(offer.media[1]))
        let answer = try JSEPAnswer.make(offer: offer, local: Self.local)
        let parsed = try SessionDescription(parsing: answer.serialized)
        #expect(parsed.bundleGroup == ["0", "1"])
        #expect(parsed.media.map(\.port) == [9, 9])
        #expect(parsed.media.map(\.formats) == [["109"], ["120", "124"]])
        #expect(parsed.media[1].direction == .sendrecv)
        // Port 0 without bundle-only, or bundle-only outside the group, is still a rejection.
        var plain = offer
        plain.media[1].attributes.removeAll { $0 == .other(name: "bundle-only", value: nil) }
        #expect(try JSEPAnswer.make(offer: plain, local: Self.local).media[1].port == 0)
        var outside = offer
        outside.attributes = outside.attributes.map { if case .group = $0 { .group(SDPGroup(semantics: "BUNDLE", identifiers: ["0"])) } else { $0 } }
        #expect(try JSEPAnswer.make(offer: outside, local: Self.local).media[1].port == 0)
    }

    @Test("answer to Firefox: its payload types; receive-only video becomes recvonly, a recvonly offer sendonly")
    func answerFirefox() throws {
        var offer = try SessionDescription(parsing: try Fixtures.text("firefox-offer.sdp"))
        offer.media[0].attributes = offer.media[0].attributes.map { $0 == .direction(.sendrecv) ? .direction(.recvonly) : $0 }
        var local = Self.local
        local.sending = ["audio": (1111, nil)]
        let answer = try JSEPAnswer.make(offer: offer, local: local)
        #expect(answer.media.map(\.formats) == [["109"], ["120", "124"]])
        #expect(answer.media[0].direction == .sendonly)
        #expect(answer.media[1].direction == .recvonly)
        #expect(answer.media[1].ssrcs.isEmpty)
        #expect(answer.media[0].formatParameters(for: 109)?.values["useinbandfec"] == "1")
    }

    @Test("an unacceptable section is rejected with port 0 and left out of BUNDLE; bad credentials are refused")
    func rejection() throws {
        var offer = try SessionDescription(parsing: try Fixtures.text("chromium-offer.sdp"))
        // Make the video section H264-only.
        offer.media[1].attributes.removeAll { if case .rtpmap(let map) = $0 { map.encoding == "VP8" } else { false } }
        let answer = try JSEPAnswer.make(offer: offer, local: Self.local)
        #expect(answer.media[1].port == 0 && answer.media[1].mid == "1")
        #expect(answer.bundleGroup == ["0"])
        var short = Self.local
        short.icePassword = "short"
        expectError(SDPError.Code.invalidArgument) { _ = try JSEPAnswer.make(offer: offer, local: short) }
        var actpass = Self.local
        actpass.setup = .actpass
        expectError(SDPError.Code.invalidArgument) { _ = try JSEPAnswer.make(offer: offer, local: actpass) }
    }
}
