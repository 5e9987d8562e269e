import NIOCore
import Testing
import TestSupport
import RTP
import Certificates

@testable import DTLSSRTP

/// libsrtp2 sessions keyed directly (no DTLS): protect/unprotect, replay and tamper checks.
@Suite("SRTP sessions")
struct SRTPSessionTests {
    static func key(_ profile: SRTPProfile, seed: UInt8 = 1) -> [UInt8] {
        (0..<(profile.masterKeyLength + profile.masterSaltLength)).map { UInt8(truncatingIfNeeded: Int(seed) &* 31 &+ $0) }
    }

    static func sessions(_ profile: SRTPProfile) throws -> (SRTPSession, SRTPSession) {
        (try SRTPSession(profile: profile, keyAndSalt: key(profile), direction: .outbound),
         try SRTPSession(profile: profile, keyAndSalt: key(profile), direction: .inbound))
    }

    @Test("RTP round trip: the payload is encrypted, the tag has the profile's length, the header stays clear", arguments: SRTPProfile.allCases)
    func rtpRoundTrip(profile: SRTPProfile) throws {
        let (outbound, inbound) = try Self.sessions(profile)
        let clear = try rtpPacket(sequence: 7, ssrc: 0xDEAD_BEEF, payload: String(repeating: "media ", count: 20))
        let protected = try outbound.protectRTP(clear)
        #expect(protected.readableBytes == clear.readableBytes + profile.rtpOverhead)
        #expect(Array(protected.readableBytesView.prefix(12)) == Array(clear.readableBytesView.prefix(12)))
        #expect(Array(protected.readableBytesView.dropFirst(12).prefix(40)) != Array(clear.readableBytesView.dropFirst(12).prefix(40)))
        #expect(PacketDemultiplexer.classify(protected) == .srtp)
        #expect(try inbound.unprotectRTP(protected) == clear)
    }

    @Test("in place: a packet that starts past its buffer's first byte is protected and unprotected where it lies, the bytes before it untouched", arguments: SRTPProfile.allCases)
    func inPlace(profile: SRTPProfile) throws {
        let (outbound, inbound) = try Self.sessions(profile)
        let clear = try rtpPacket(sequence: 9, ssrc: 0xFEED_F00D, payload: String(repeating: "frame ", count: 30))
        var buffer = ByteBuffer(bytes: [1, 2, 3])
        buffer.writeImmutableBuffer(clear)
        buffer.moveReaderIndex(forwardBy: 3)
        try outbound.protectRTP(&buffer)
        #expect(buffer.readableBytes == clear.readableBytes + profile.rtpOverhead)
        try inbound.unprotectRTP(&buffer)
        #expect(buffer == clear)
        buffer.moveReaderIndex(to: 0)
        #expect(buffer.readBytes(length: 3) == [1, 2, 3])
    }

    @Test("a replayed SRTP packet is refused (RFC 3711 §3.3.2)", arguments: SRTPProfile.allCases)
    func replay(profile: SRTPProfile) throws {
        let (outbound, inbound) = try Self.sessions(profile)
        let protected = try outbound.protectRTP(try rtpPacket(sequence: 100, ssrc: 5, payload: "once"))
        _ = try inbound.unprotectRTP(protected)
        #expect { try inbound.unprotectRTP(protected) } throws: { ($0 as? TransportError)?.code == .replayed }
        // Later packets still pass.
        let next = try outbound.protectRTP(try rtpPacket(sequence: 101, ssrc: 5, payload: "twice"))
        #expect(String(buffer: try RTPPacket(parsing: try inbound.unprotectRTP(next)).payload) == "twice")
    }

    @Test("the sender refuses to protect the same sequence number twice (no keystream reuse, RFC 3711 §9.1)", arguments: SRTPProfile.allCases)
    func noRepeatedSend(profile: SRTPProfile) throws {
        let (outbound, _) = try Self.sessions(profile)
        let packet = try rtpPacket(sequence: 42, ssrc: 3, payload: "once only")
        _ = try outbound.protectRTP(packet)
        #expect(throws: TransportError.self) { try outbound.protectRTP(packet) }
    }

    @Test("a packet far behind the replay window is refused", arguments: SRTPProfile.allCases)
    func tooOld(profile: SRTPProfile) throws {
        let (outbound, inbound) = try Self.sessions(profile)
        let old = try outbound.protectRTP(try rtpPacket(sequence: 10, ssrc: 6, payload: "old"))
        let new = try outbound.protectRTP(try rtpPacket(sequence: UInt16(10 + SRTPSession.replayWindow + 100), ssrc: 6, payload: "new"))
        _ = try inbound.unprotectRTP(new)
        #expect { try inbound.unprotectRTP(old) } throws: { ($0 as? TransportError)?.code == .replayed }
    }

    @Test("a flipped bit anywhere fails authentication", arguments: SRTPProfile.allCases)
    func tampering(profile: SRTPProfile) throws {
        let (outbound, _) = try Self.sessions(profile)
        let protected = try outbound.protectRTP(try rtpPacket(sequence: 1, ssrc: 9, payload: "integrity"))
        for position in [1, 8, 14, protected.readableBytes - 1] {
            let inbound = try SRTPSession(profile: profile, keyAndSalt: Self.key(profile), direction: .inbound)
            var bytes = Array(protected.readableBytesView)
            bytes[position] ^= 0x01
            #expect(throws: TransportError.self) { try inbound.unprotectRTP(ByteBuffer(bytes: bytes)) }
        }
        let wrongKey = try SRTPSession(profile: profile, keyAndSalt: Self.key(profile, seed: 2), direction: .inbound)
        #expect { try wrongKey.unprotectRTP(protected) } throws: { ($0 as? TransportError)?.code == .authenticationFailed }
    }

    @Test("SRTCP round trip and replay refusal (RFC 3711 §3.4)", arguments: SRTPProfile.allCases)
    func rtcp(profile: SRTPProfile) throws {
        let (outbound, inbound) = try Self.sessions(profile)
        let report = try RTCPPacket.serializeCompound([.receiverReport(RTCPReceiverReport(ssrc: 0x1234))])
        let protected = try outbound.protectRTCP(report)
        #expect(PacketDemultiplexer.classify(protected) == .srtcp)
        #expect(try inbound.unprotectRTCP(protected) == report)
        #expect { try inbound.unprotectRTCP(protected) } throws: { ($0 as? TransportError)?.code == .replayed }
    }

    @Test("wrong key lengths, the wrong direction and runt packets are refused with errors")
    func misuse() throws {
        #expect { try SRTPSession(profile: .aeadAES128GCM, keyAndSalt: [1, 2, 3], direction: .inbound) } throws: {
            ($0 as? TransportError)?.code == .invalidArgument
        }
        let (outbound, inbound) = try Self.sessions(.aes128CMHMACSHA1_80)
        #expect(throws: TransportError.self) { try inbound.protectRTP(try rtpPacket(sequence: 1, ssrc: 1, payload: "x")) }
        #expect(throws: TransportError.self) { try outbound.unprotectRTP(ByteBuffer(bytes: [0x80, 0, 0, 1])) }
        #expect(throws: TransportError.self) { try inbound.unprotectRTP(ByteBuffer(bytes: [0x80, 0, 0])) }
        #expect(throws: TransportError.self) { try inbound.unprotectRTCP(ByteBuffer(bytes: [0x80, 201, 0, 1, 0, 0, 0, 1])) }
    }

    @Test("exported keying material splits as client key | server key | client salt | server salt (RFC 5764 §4.2)")
    func keyingMaterialLayout() throws {
        let exported = (0..<60).map { UInt8($0) }
        let client = try SRTPKeyingMaterial(exported: exported, profile: .aes128CMHMACSHA1_80, role: .client)
        #expect(client.localKeyAndSalt == Array(0..<16) + Array(32..<46))
        #expect(client.remoteKeyAndSalt == Array(16..<32) + Array(46..<60))
        let server = try SRTPKeyingMaterial(exported: exported, profile: .aes128CMHMACSHA1_80, role: .server)
        #expect(server.localKeyAndSalt == client.remoteKeyAndSalt)
        let gcm = try SRTPKeyingMaterial(exported: Array(exported.prefix(56)), profile: .aeadAES128GCM, role: .client)
        #expect(gcm.localKeyAndSalt == Array(0..<16) + Array(32..<44))
        #expect(gcm.remoteKeyAndSalt == Array(16..<32) + Array(44..<56))
        #expect(throws: TransportError.self) { try SRTPKeyingMaterial(exported: exported, profile: .aeadAES128GCM, role: .client) }
    }
}
