import ICE
import DTLSSRTP
import MeshNode
import RTP
import SDP
import NIOCore
import Testing
import TestSupport

/// Two ICE agents in one process over 127.0.0.1, DTLS-SRTP on top (RFC 5764, RFC 8842).
@Suite("DTLS-SRTP over two loopback ICE agents", .serialized, .timeLimit(.minutes(2)))
struct DTLSSRTPLoopbackTests {
    static let cases: [(SDPSetupRole, SRTPProfile)] = [
        (.active, .aes128CMHMACSHA1_80), (.active, .aeadAES128GCM),
        (.passive, .aes128CMHMACSHA1_80), (.passive, .aeadAES128GCM),
    ]

    @Test("handshake in both roles with both profiles, then SRTP and SRTCP both ways", arguments: cases)
    func roundTrip(answererSetup: SDPSetupRole, profile: SRTPProfile) async throws {
        // The offerer lists both profiles; the answerer offers only `profile`, so the
        // negotiation must land on it whichever side is the DTLS server.
        let pair = try await TransportPair.make(answererSetup: answererSetup, profilesB: [profile])
        #expect(pair.a.transport.configuration.role == (answererSetup == .active ? .server : .client))
        #expect(pair.b.transport.configuration.role == (answererSetup == .active ? .client : .server))
        let start = ContinuousClock.now
        try await pair.start()
        let profileA = try await withTimeout("A connected") { try await pair.a.transport.connected() }
        let profileB = try await withTimeout("B connected") { try await pair.b.transport.connected() }
        let elapsed = ContinuousClock.now - start
        #expect(profileA == profile)
        #expect(profileB == profile)

        let fromA = try await deliverRTP("opus from A", ssrc: 0x1111_1111, from: pair.a, to: pair.b)
        let fromB = try await deliverRTP("opus from B", ssrc: 0x2222_2222, from: pair.b, to: pair.a)
        #expect(fromA.payloadType == 111 && fromB.payloadType == 111)
        try await deliverRTCP(ssrc: 0x1111_1111, from: pair.a, to: pair.b)
        try await deliverRTCP(ssrc: 0x2222_2222, from: pair.b, to: pair.a)

        let statsA = pair.a.transport.statistics
        let statsB = pair.b.transport.statistics
        #expect(statsA.authenticationFailures == 0 && statsB.authenticationFailures == 0)
        #expect(statsB.rtpReceived >= 1 && statsA.rtpReceived >= 1)
        print("DTLS \(answererSetup == .active ? "A server" : "A client") \(profile): ICE+DTLS \(elapsed.inMilliseconds) ms, handshake A \(statsA.handshakeDuration.map { "\($0.inMilliseconds) ms" } ?? "-"), B \(statsB.handshakeDuration.map { "\($0.inMilliseconds) ms" } ?? "-")")

        // close_notify: B learns the session ended and stops accepting media.
        pair.a.transport.close()
        try await pair.b.wait(for: "close_notify from A") { $0.closedByPeer }
        #expect(throws: TransportError.self) { try pair.b.transport.sendRTP(try rtpPacket(sequence: 900, ssrc: 2, payload: "late")) }
        await pair.shutdown()
    }

    @Test("a certificate that does not match the signed fingerprint fails the session with fingerprintMismatch (RFC 8842 §5.1)")
    func wrongFingerprint() async throws {
        let impostor = try DTLSCertificate(commonName: "impostor")
        let pair = try await TransportPair.make(answererSetup: .active, bFingerprintOfA: impostor.fingerprint)
        try await pair.start()
        // B is the client and checks A's certificate: it must refuse.
        let error = try await pair.b.connectionFailure("B to fail")
        #expect(error?.code == .fingerprintMismatch)
        #expect(error?.reason.contains(impostor.fingerprint.hexDigest) == true)
        #expect(error?.reason.contains(pair.a.certificate.fingerprint.hexDigest) == true)
        // A gets the alert (or times out): either way it never connects and no keys exist.
        let errorA = try await pair.a.connectionFailure("A to fail")
        #expect(errorA != nil)
        #expect(throws: TransportError.self) { try pair.a.transport.sendRTP(try rtpPacket(sequence: 1, ssrc: 1, payload: "x")) }
        try await pair.b.wait(for: "the failed event") { $0.failure?.code == .fingerprintMismatch }
        await pair.shutdown()
    }

    @Test("peers with no SRTP profile in common fail with noSRTPProfile or a handshake failure")
    func noCommonProfile() async throws {
        let pair = try await TransportPair.make(profilesA: [.aeadAES128GCM], profilesB: [.aes128CMHMACSHA1_80])
        try await pair.start()
        let error = try await pair.b.connectionFailure("B to fail")
        #expect(error.map { [.noSRTPProfile, .handshakeFailed].contains($0.code) } == true, "\(String(describing: error))")
        await pair.shutdown()
    }

    @Test("media sent before the handshake is refused with notConnected")
    func sendBeforeHandshake() async throws {
        let pair = try await TransportPair.make()
        #expect {
            try pair.a.transport.sendRTP(try rtpPacket(sequence: 1, ssrc: 1, payload: "early"))
        } throws: { ($0 as? TransportError)?.code == .notConnected }
        await pair.shutdown()
    }

    @Test("a handshake the peer never answers times out with handshakeTimeout")
    func handshakeTimeout() async throws {
        // Both sides passive (a contradiction we force past role resolution): nobody sends a
        // ClientHello, so both must give up after the configured timeout.
        let pair = try await TransportPair.make(answererSetup: .active, handshakeTimeout: .milliseconds(600))
        let agentB = pair.b.agent
        let stuckB = try TransportPeer(name: "B", agent: agentB, certificate: pair.b.certificate, configuration: .init(
            certificate: pair.b.certificate, role: .server, remoteFingerprint: pair.a.certificate.fingerprint,
            handshakeTimeout: .milliseconds(600)))
        let stuck = TransportPair(a: pair.a, b: stuckB)
        try await stuck.start()
        let error = try await stuck.a.connectionFailure("A to time out")
        #expect(error?.code == .handshakeTimeout)
        await stuck.shutdown()
    }
}
