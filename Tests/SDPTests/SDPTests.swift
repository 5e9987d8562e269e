import Testing
import TestSupport
@testable import SDP

@Suite("SDP (RFC 8866) with JSEP attributes, on browser-format fixtures")
struct SDPTests {
    static let fixtures = [
        "chromium156-captured-offer.sdp", "chromium156-captured-offer-gathered.sdp", "chromium156-captured-answer.sdp",
        "chromium-offer.sdp", "chromium-answer.sdp", "firefox-offer.sdp",
        "firefox153-captured-offer.sdp", "firefox153-captured-offer-gathered.sdp", "firefox153-captured-answer.sdp",
        "firefox153-captured-answer-to-chromium156.sdp", "firefox153-captured-offer-max-bundle.sdp",
    ]

    @Test("every fixture serializes back to exactly its text", arguments: fixtures)
    func roundTrip(name: String) throws {
        let text = try Fixtures.text(name)
        let description = try SessionDescription(parsing: text)
        #expect(description.serialized == text)
        #expect(try SessionDescription(parsing: description.serialized) == description)
        // LF-only line endings parse to the same description.
        #expect(try SessionDescription(parsing: text.replacingOccurrences(of: "\r\n", with: "\n")) == description)
    }

    @Test("Chromium offer: BUNDLE, transport attributes, codecs, extensions, sources")
    func chromiumOffer() throws {
        let offer = try SessionDescription(parsing: try Fixtures.text("chromium-offer.sdp"))
        #expect(offer.origin.sessionID == "3947321063254157283")
        #expect(offer.bundleGroup == ["0", "1"])
        #expect(offer.media.count == 2)
        let audio = offer.media[0], video = offer.media[1]
        #expect(audio.kind == "audio" && audio.port == 9 && audio.proto == "UDP/TLS/RTP/SAVPF")
        #expect(audio.formats == ["111", "63", "9", "0", "8", "13", "110", "126"])
        #expect(audio.mid == "0" && video.mid == "1")
        #expect(audio.isRTCPMuxed && audio.attributes.contains(.rtcpReducedSize))
        #expect(audio.attributes.contains(.iceUsernameFragment("Qx7k")))
        #expect(audio.attributes.contains(.icePassword("h3Jd9sLqP0vWn2aZrT5yXc8b")))
        #expect(audio.attributes.contains(.iceOptions(["trickle"])))
        #expect(audio.attributes.contains(.setup(.actpass)))
        let fingerprint = try #require(audio.attributes.lazy.compactMap { if case .fingerprint(let f) = $0 { f } else { nil } }.first)
        #expect(fingerprint.hashFunction == "sha-256" && fingerprint.digest.count == 32 && fingerprint.digest[0] == 0x4F)
        #expect(audio.rtpMaps.first == SDPRTPMap(payloadType: 111, encoding: "opus", clockRate: 48_000, channels: 2))
        #expect(audio.formatParameters(for: 111)?.values == ["minptime": "10", "useinbandfec": "1"])
        #expect(audio.extensionMaps.map(\.id) == [1, 2, 3, 4])
        #expect(audio.attributes.contains(.msid(SDPMediaStreamID(streamID: "5f6e1d2c-9b8a-4c3d-8e7f-0a1b2c3d4e5f", trackID: "8c2b7a61-3d4e-4f50-9a1b-2c3d4e5f6071"))))
        #expect(audio.ssrcs == [2_751_412_389])
        #expect(video.feedback(for: 96).map(\.description) == ["96 goog-remb", "96 transport-cc", "96 ccm fir", "96 nack", "96 nack pli"])
        #expect(video.ssrcs == [1_502_733_415, 3_904_426_611])
        #expect(video.attributes.contains(.ssrcGroup(SDPSourceGroup(semantics: "FID", ssrcs: [1_502_733_415, 3_904_426_611]))))
        #expect(video.candidates.isEmpty)
        #expect(offer.attributes.contains(.other(name: "msid-semantic", value: " WMS 5f6e1d2c-9b8a-4c3d-8e7f-0a1b2c3d4e5f")))
    }

    @Test("candidates: host, tcp active, srflx and relay with related address and extensions (RFC 8839 §5.1)")
    func candidates() throws {
        let answer = try SessionDescription(parsing: try Fixtures.text("chromium-answer.sdp"))
        let candidates = answer.media[0].candidates
        #expect(candidates.map(\.type) == ["host", "host", "srflx", "relay"])
        #expect(candidates[0].priority == 2_122_260_223 && candidates[0].port == 46243 && candidates[0].transport == "udp")
        #expect(candidates[1].extensions.first?.name == "tcptype" && candidates[1].extensions.first?.value == "active")
        #expect(candidates[2].relatedAddress == "192.168.0.196" && candidates[2].relatedPort == 46243)
        #expect(answer.media[0].direction == .recvonly)
        #expect(answer.media[0].connections == [.init(address: "203.0.113.24")])

        let firefox = try SessionDescription(parsing: try Fixtures.text("firefox-offer.sdp"))
        #expect(firefox.media[0].candidates.count == 3)
        #expect(firefox.media[0].attributes.contains(.endOfCandidates))
        #expect(firefox.media[0].extensionMaps[1] == SDPExtensionMap(id: 2, direction: .recvonly, uri: "urn:ietf:params:rtp-hdrext:csrc-audio-level"))
    }

    @Test("negotiation picks Opus and VP8 with their payload types, feedback, RTX and extensions (Chromium)")
    func negotiateChromium() throws {
        let sections = try CodecNegotiation.negotiate(offer: SessionDescription(parsing: try Fixtures.text("chromium-offer.sdp")))
        let audio = try #require(sections.first?.codec)
        #expect(audio.payloadType == 111 && audio.encoding == "opus" && audio.clockRate == 48_000 && audio.channels == 2)
        #expect(audio.usesInbandFEC && !audio.usesDTX && !audio.prefersStereo)
        #expect(audio.feedback.map(\.description) == ["111 transport-cc"])
        #expect(sections[0].extensions.map(\.uri).contains(RTPHeaderExtensionURI.transportWideCC))
        #expect(sections[0].answerDirection == .sendrecv)
        let video = try #require(sections.last?.codec)
        #expect(video.payloadType == 96 && video.encoding == "VP8" && video.retransmissionPayloadType == 97)
        #expect(Set(video.feedback.map(\.description)) == ["96 goog-remb", "96 transport-cc", "96 ccm fir", "96 nack", "96 nack pli"])
        // video-orientation, toffset, playout-delay and the rest are not offered back; the rid
        // extensions (10, 11) are, for simulcast (RFC 8852).
        #expect(Set(sections[1].extensions.map(\.id)) == [2, 3, 4, 10, 11])
        #expect(sections[1].remoteSSRCs == [1_502_733_415, 3_904_426_611])
    }

    @Test("captured Chromium 156 offer and answer: candidates, BUNDLE, negotiation")
    func capturedChromium() throws {
        let offer = try SessionDescription(parsing: try Fixtures.text("chromium156-captured-offer.sdp"))
        let gathered = try SessionDescription(parsing: try Fixtures.text("chromium156-captured-offer-gathered.sdp"))
        let answer = try SessionDescription(parsing: try Fixtures.text("chromium156-captured-answer.sdp"))
        #expect(offer.bundleGroup == ["0", "1"] && answer.bundleGroup == ["0", "1"])
        #expect(offer.media.allSatisfy { $0.port == 9 && $0.candidates.isEmpty })
        // Gathering fills in the port, the c= line and host candidates (UDP and TCP active, IPv4 and IPv6).
        let audio = gathered.media[0]
        #expect(audio.port != 9 && !audio.candidates.isEmpty)
        #expect(audio.candidates.contains { $0.transport == "udp" && $0.type == "host" && $0.port == audio.port })
        #expect(audio.candidates.contains { $0.transport == "tcp" && $0.extensions.contains { $0.name == "tcptype" && $0.value == "active" } })
        // Everything but the transport details is the same as before gathering.
        var stripped = gathered
        for index in stripped.media.indices {
            stripped.media[index].port = 9
            stripped.media[index].connections = [.init()]
            stripped.media[index].attributes.removeAll { if case .candidate = $0 { true } else { false } }
        }
        #expect(stripped == offer)
        #expect(answer.media.allSatisfy { $0.attributes.contains(.setup(.active)) && $0.direction == .recvonly })

        let sections = try CodecNegotiation.negotiate(offer: gathered)
        #expect(sections.map(\.codec?.encoding) == ["opus", "VP8"])
        #expect(sections[0].codec?.payloadType == 111 && sections[0].codec?.usesInbandFEC == true)
        #expect(sections[1].codec?.payloadType == 96 && sections[1].codec?.retransmissionPayloadType == 97)
        #expect(Set(sections[1].codec?.feedback.map(\.description) ?? []) == ["96 goog-remb", "96 transport-cc", "96 ccm fir", "96 nack", "96 nack pli"])
        #expect(sections.map(\.remoteSSRCs.count) == [1, 2])
        // The answer negotiates back to the same choice.
        #expect(try CodecNegotiation.negotiate(offer: answer).map(\.codec?.payloadType) == [111, 96])
    }

    @Test("captured Firefox 153 offer and answer: candidates, BUNDLE, negotiation")
    func capturedFirefox() throws {
        let offer = try SessionDescription(parsing: try Fixtures.text("firefox153-captured-offer.sdp"))
        let gathered = try SessionDescription(parsing: try Fixtures.text("firefox153-captured-offer-gathered.sdp"))
        let answer = try SessionDescription(parsing: try Fixtures.text("firefox153-captured-answer.sdp"))
        #expect(offer.bundleGroup == ["0", "1"] && answer.bundleGroup == ["0", "1"])
        #expect(offer.media.allSatisfy { $0.port == 9 && $0.candidates.isEmpty })
        #expect(offer.media.map(\.formats) == [["109", "9", "0", "8", "101"], ["120", "124", "121", "125", "99", "100", "123", "122", "119"]])
        // Firefox gathers for RTCP (component 2) too until rtcp-mux is accepted, and ends with end-of-candidates.
        let audio = gathered.media[0]
        #expect(audio.port != 9 && audio.attributes.contains(.endOfCandidates))
        #expect(audio.candidates.contains { $0.transport.lowercased() == "udp" && $0.type == "host" && $0.port == audio.port && $0.component == 1 })
        #expect(audio.candidates.contains { $0.address == "::1" })
        #expect(audio.candidates.contains { $0.component == 2 })
        #expect(audio.candidates.contains { $0.transport.lowercased() == "tcp" && $0.port == 9 && $0.extensions.contains { $0.name == "tcptype" && $0.value == "active" } })
        // Unlike Chromium's, Firefox's description after setLocalDescription differs from what
        // createOffer returned beyond the transport: a session-level direction, a=rtcp lines,
        // transport-cc feedback on every audio codec, telephone-event without its channel count.
        #expect(gathered.attributes.contains(.direction(.sendrecv)) && !offer.attributes.contains(.direction(.sendrecv)))
        #expect(audio.attributes.contains { if case .other(name: "rtcp", _) = $0 { true } else { false } })
        #expect(gathered.media.map(\.formats) == offer.media.map(\.formats))
        #expect(answer.media.allSatisfy { $0.attributes.contains(.setup(.active)) && $0.direction == .sendrecv })

        let sections = try CodecNegotiation.negotiate(offer: gathered)
        #expect(sections.map(\.codec?.encoding) == ["opus", "VP8"])
        let opus = try #require(sections[0].codec)
        #expect(opus.payloadType == 109 && opus.prefersStereo && opus.usesInbandFEC)
        #expect(opus.feedback.map(\.description) == ["109 transport-cc"])
        let vp8 = try #require(sections[1].codec)
        #expect(vp8.payloadType == 120 && vp8.retransmissionPayloadType == 124)
        #expect(Set(vp8.feedback.map(\.description)) == ["120 goog-remb", "120 transport-cc", "120 ccm fir", "120 nack", "120 nack pli"])
        // mid, audio level and transport-cc for audio; mid, abs-send-time and transport-cc for video.
        #expect(Set(sections[0].extensions.map(\.id)) == [1, 3, 7])
        #expect(Set(sections[1].extensions.map(\.id)) == [3, 4, 7])
        #expect(sections.map(\.remoteSSRCs.count) == [1, 2])
        // Firefox's answer to its own offer negotiates back to the same choice.
        #expect(try CodecNegotiation.negotiate(offer: answer).map(\.codec?.payloadType) == [109, 120])
    }

    @Test("captured Firefox 153 answer to the captured Chromium 156 offer: Chromium's payload types kept")
    func capturedFirefoxAnswerToChromium() throws {
        let answer = try SessionDescription(parsing: try Fixtures.text("firefox153-captured-answer-to-chromium156.sdp"))
        let offer = try SessionDescription(parsing: try Fixtures.text("chromium156-captured-offer-gathered.sdp"))
        #expect(answer.media.map(\.mid) == offer.media.map(\.mid))
        #expect(answer.media.allSatisfy { $0.attributes.contains(.setup(.active)) })
        #expect(!answer.media[0].candidates.isEmpty)
        // Session-level direction and extmap-allow-mixed (Firefox puts them there in answers).
        #expect(answer.attributes.contains(.direction(.sendrecv)))
        let sections = try CodecNegotiation.negotiate(offer: answer)
        #expect(sections.map(\.codec?.payloadType) == [111, 96])
        #expect(sections[1].codec?.retransmissionPayloadType == 97)
        #expect(sections[0].codec?.feedback.map(\.description) == ["111 transport-cc"])
    }

    @Test("negotiation on Firefox's offer: its own payload type numbers and stereo Opus")
    func negotiateFirefox() throws {
        let sections = try CodecNegotiation.negotiate(offer: SessionDescription(parsing: try Fixtures.text("firefox-offer.sdp")))
        let audio = try #require(sections[0].codec)
        #expect(audio.payloadType == 109 && audio.prefersStereo && audio.usesInbandFEC)
        #expect(audio.feedback.isEmpty)
        let video = try #require(sections[1].codec)
        #expect(video.payloadType == 120 && video.retransmissionPayloadType == 124)
        #expect(video.feedback.count == 5)
        #expect(Set(sections[1].extensions.map(\.id)) == [3, 4, 7])
    }

    @Test("negotiation rejects sections without Opus/VP8 or rtcp-mux, and fails when nothing is left")
    func negotiationFailure() throws {
        let h264Only = """
            v=0\r
            o=- 1 1 IN IP4 127.0.0.1\r
            s=-\r
            t=0 0\r
            m=video 9 UDP/TLS/RTP/SAVPF 102\r
            a=rtcp-mux\r
            a=rtpmap:102 H264/90000\r
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r
            a=rtpmap:111 opus/48000/2\r
            m=audio 0 UDP/TLS/RTP/SAVPF 111\r
            a=rtcp-mux\r
            a=rtpmap:111 opus/48000/2\r

            """
        let offer = try SessionDescription(parsing: h264Only)
        #expect(offer.media.count == 3)
        expectError(SDPError.Code.negotiationFailed) { _ = try CodecNegotiation.negotiate(offer: offer) }
        #expect(CodecNegotiation.negotiate(section: offer.media[1]).codec == nil)
    }

    @Test("malformed descriptions name the offending line", arguments: [
        ("o=- 1 1 IN IP4 x\r\nv=0\r\n", "line 1"),
        ("v=1\r\n", "line 1"),
        ("v=0\r\no=- 1 IN IP4 x\r\n", "line 2"),
        ("v=0\r\no=- 1 1 IN IP4 x\r\ns=-\r\n", "t="),
        ("v=0\r\no=- 1 1 IN IP4 x\r\ns=-\r\nt=0 0\r\nx=unknown\r\n", "line 5"),
        ("v=0\r\no=- 1 1 IN IP4 x\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 300\r\n", "line 5"),
        ("v=0\r\no=- 1 1 IN IP4 x\r\ns=-\r\nt=0 0\r\nm=audio 70000 RTP/AVP 0\r\n", "line 5"),
        ("v=0\r\no=- 1 1 IN IP4 x\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU\r\n", "line 6"),
        ("v=0\r\no=- 1 1 IN IP4 x\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\na=candidate:1 1 udp 1 10.0.0.1 99999 typ host\r\n", "line 6"),
        ("v=0\r\no=- 1 1 IN IP4 x\r\ns=-\r\nt=0 0\r\na=fingerprint:sha-256 AB:C\r\n", "line 5"),
        ("v=0\r\no=- 1 1 IN IP4 x\r\ns=-\r\nt=0 0\r\na=setup:sometimes\r\n", "line 5"),
        ("v=0\r\no=- 1 1 IN IP4 x\r\ns=-\r\nt=0 0\r\na=extmap:0 urn:x\r\n", "line 5"),
        ("v=0\r\no=- 1 1 IN IP4 x\r\ns=-\r\nt=0 0\r\na=rtcp-mux:yes\r\n", "line 5"),
        ("v=0\r\no=- 1 1 IN IP4 x\r\ns=-\r\nt=0 0\r\na=ssrc:abc cname:x\r\n", "line 5"),
        ("v=0\r\no=- 1 1 IN IP4 x\r\ns=-\r\nt=0 0\r\nnot a line\r\n", "line 5"),
    ])
    func malformed(text: String, mentions: String) {
        do {
            _ = try SessionDescription(parsing: text)
            Issue.record("parsed: \(text.debugDescription)")
        } catch {
            #expect(error.code == .sdpSyntax)
            #expect(error.reason.contains(mentions), "\(error.reason)")
        }
    }

    @Test("a description built in code serializes with CRLF and parses back")
    func build() throws {
        let description = SessionDescription(
            origin: .init(sessionID: "42", sessionVersion: "1"),
            attributes: [.group(SDPGroup(semantics: "BUNDLE", identifiers: ["0"]))],
            media: [MediaDescription(kind: "audio", formats: ["111"], connections: [.init()], attributes: [
                .mid("0"), .direction(.sendrecv), .rtcpMux, .setup(.active),
                .fingerprint(SDPFingerprint(hashFunction: "sha-256", digest: [0x0A, 0xFF])),
                .rtpmap(SDPRTPMap(payloadType: 111, encoding: "opus", clockRate: 48_000, channels: 2)),
                .fmtp(SDPFormatParameters(payloadType: 111, pairs: ["minptime": "10", "useinbandfec": "1"])),
                .rtcpFeedback(SDPRTCPFeedback(payloadType: 111, type: "transport-cc")),
                .candidate(SDPCandidate(foundation: "1", component: 1, transport: "udp", priority: 2_130_706_431, address: "10.0.0.2", port: 5000, type: "host")),
                .endOfCandidates,
            ])])
        let text = description.serialized
        #expect(text.hasPrefix("v=0\r\no=- 42 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n"))
        #expect(text.contains("a=fingerprint:sha-256 0A:FF\r\n"))
        #expect(text.contains("a=fmtp:111 minptime=10;useinbandfec=1\r\n"))
        #expect(text.contains("a=candidate:1 1 udp 2130706431 10.0.0.2 5000 typ host\r\n"))
        #expect(try SessionDescription(parsing: text) == description)
    }
}

@Suite("SDP parser robustness")
struct SDPRobustnessTests {
    @Test("mutated browser descriptions never trap; whatever parses re-serializes to an equal description")
    func mutations() throws {
        var generator = SplitMix64(seed: 0xD5C0)
        let seeds = try SDPTests.fixtures.map { Array(try Fixtures.text($0).utf8) }
        let alphabet = Array("=: /;\r\n0a9-*".utf8)
        var parsed = 0
        for _ in 0..<1500 {
            var bytes = seeds[Int.random(in: 0..<seeds.count, using: &generator)]
            for _ in 0..<Int.random(in: 1...3, using: &generator) {
                let index = Int.random(in: 0..<bytes.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: bytes[index] = alphabet[Int.random(in: 0..<alphabet.count, using: &generator)]
                case 1: bytes.remove(at: index)
                default: bytes.insert(alphabet[Int.random(in: 0..<alphabet.count, using: &generator)], at: index)
                }
            }
            guard let description = try? SessionDescription(parsing: String(decoding: bytes, as: UTF8.self)) else { continue }
            parsed += 1
            #expect(try SessionDescription(parsing: description.serialized) == description)
            _ = try? CodecNegotiation.negotiate(offer: description)
        }
        // Most single-byte changes land in values that stay valid; the test must exercise both paths.
        #expect(parsed > 100 && parsed < 1500)
    }
}
