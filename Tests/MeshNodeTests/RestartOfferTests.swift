import ICE
import SDP
import Testing
@testable import MeshNode

/// The restart offer a side builds from its last answer (docs/calls.md "The callee's restart
/// offer and glare"): RFC 8829 §5.2.2's subsequent offer keeps the session's sections.
@Suite struct RestartOfferTests {
    /// A browser's offer after it added a video section to an audio call (mids 0 and 1, both
    /// bundled), and a third section the CLI cannot take (H.264 only).
    static let offer = [
        "v=0", "o=- 4611731400430051336 3 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0 1 2",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111", "c=IN IP4 0.0.0.0", "a=ice-ufrag:brws", "a=ice-pwd:browserpassword0123456789",
        "a=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99",
        "a=setup:actpass", "a=mid:0", "a=sendrecv", "a=rtcp-mux", "a=rtpmap:111 opus/48000/2", "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=candidate:1 1 udp 2122260223 192.0.2.9 50000 typ host",
        "m=video 9 UDP/TLS/RTP/SAVPF 96", "c=IN IP4 0.0.0.0", "a=ice-ufrag:brws", "a=ice-pwd:browserpassword0123456789",
        "a=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99",
        "a=setup:actpass", "a=mid:1", "a=sendonly", "a=rtcp-mux", "a=rtpmap:96 VP8/90000", "a=ssrc:1234 cname:page",
        "m=video 9 UDP/TLS/RTP/SAVPF 102", "c=IN IP4 0.0.0.0", "a=ice-ufrag:brws", "a=ice-pwd:browserpassword0123456789",
        "a=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99",
        "a=setup:actpass", "a=mid:2", "a=sendonly", "a=rtcp-mux", "a=rtpmap:102 H264/90000",
    ].joined(separator: "\r\n") + "\r\n"

    @Test("from the caller's answer to a renegotiation: the same sections and mids, new ICE credentials, its DTLS role, only the new candidates")
    func restartOfferKeepsTheSession() throws {
        let offer = try SessionDescription(parsing: Self.offer)
        let fingerprint = try SDPFingerprint(parsing: "sha-256 11:22:33:44:55:66:77:88:99:00:AA:BB:CC:DD:EE:FF:11:22:33:44:55:66:77:88:99:00:AA:BB:CC:DD:EE:FF")
        var answer = try JSEPAnswer.make(offer: offer, local: .init(
            iceUsernameFragment: "old1", icePassword: "oldpassword01234567890123", fingerprint: fingerprint, setup: .passive,
            cname: "cli", streamID: "cli", sending: ["audio": (ssrc: 42, retransmissionSSRC: nil)], sessionID: 7))
        answer.media[0].attributes.append(.candidate(try SDPCandidate(line: "candidate:9 1 udp 2122260223 192.0.2.1 40000 typ host")))
        let candidate = try SDPCandidate(line: "candidate:5 1 udp 1686052607 203.0.113.207 41000 typ srflx raddr 100.64.3.2 rport 41000")
        let restart = Call.restartOffer(from: answer, credentials: ICECredentials(ufrag: "new2", password: "newpassword01234567890123"),
                                        setup: .passive, sessionVersion: 9, candidates: [candidate], gatheringDone: true)

        #expect(restart.media.map(\.mid) == ["0", "1", "2"])
        #expect(restart.media.map(\.port) == [9, 9, 0], "the refused H.264 section stays refused")
        #expect(restart.origin.sessionVersion == "9")
        let attributes = restart.attributes + restart.media.flatMap(\.attributes)
        #expect(!attributes.contains(.iceUsernameFragment("old1")) && attributes.contains(.iceUsernameFragment("new2")))
        #expect(!attributes.contains(.icePassword("oldpassword01234567890123")))
        #expect(attributes.filter { if case .setup = $0 { true } else { false } }.allSatisfy { $0 == .setup(.passive) })
        let candidates = attributes.compactMap { if case .candidate(let c) = $0 { c } else { nil } }
        #expect(candidates == [candidate], "the old agent's candidates are gone")
        #expect(restart.media[0].attributes.last == .endOfCandidates)
        // It reads back as an offer: a peer answering it negotiates the same two live sections.
        let reparsed = try SessionDescription(parsing: restart.serialized)
        let transport = try SDPTransportParameters(reparsed)
        #expect(transport.iceUsernameFragment == "new2")
        #expect(reparsed.bundleGroup == ["0", "1"])
    }
}
