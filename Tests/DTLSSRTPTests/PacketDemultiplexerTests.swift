import NIOCore
import Testing
import TestSupport
import RTP
import Certificates

@testable import DTLSSRTP
import SDP

/// RFC 7983 §7 demultiplexing, RFC 8842 role resolution and RFC 8122 fingerprints.
@Suite("Transport: demultiplexing, roles, fingerprints")
struct PacketDemultiplexerTests {
    @Test("every first byte lands in the RFC 7983 §7 range it belongs to")
    func firstByteRanges() {
        for first in 0...255 {
            let kind = PacketDemultiplexer.classify(ByteBuffer(bytes: [UInt8(first), 96, 0, 0]))
            let expected: DemultiplexedPacketKind =
                switch first {
                case 0...3: .stun
                case 16...19: .zrtp
                case 20...63: .dtls
                case 64...79: .turnChannel
                case 128...191: .srtp
                default: .unknown
                }
            #expect(kind == expected, "first byte \(first)")
        }
    }

    @Test("RTCP packet types 192-223 in the second byte are SRTCP, other payload types SRTP (RFC 5761 §4)")
    func rtpVersusRTCP() {
        for second in 0...255 {
            let kind = PacketDemultiplexer.classify(ByteBuffer(bytes: [0x80, UInt8(second)]))
            #expect(kind == ((192...223).contains(second) ? .srtcp : .srtp), "second byte \(second)")
        }
        // Marker bit set on payload type 111 (0xEF) is RTP, not RTCP.
        #expect(PacketDemultiplexer.classify(ByteBuffer(bytes: [0x90, 0xEF])) == .srtp)
        #expect(PacketDemultiplexer.classify(ByteBuffer(bytes: [0x81, 200])) == .srtcp)
    }

    @Test("empty and one-byte RTP datagrams, and a reader index past the start, are handled")
    func edgeCases() {
        #expect(PacketDemultiplexer.classify(ByteBuffer()) == .unknown)
        #expect(PacketDemultiplexer.classify(ByteBuffer(bytes: [0x80])) == .unknown)
        #expect(PacketDemultiplexer.classify(ByteBuffer(bytes: [22])) == .dtls)
        var buffer = ByteBuffer(bytes: [0xFF, 0x00, 0x01])
        buffer.moveReaderIndex(forwardBy: 1)
        #expect(PacketDemultiplexer.classify(buffer) == .stun)
        [UInt8]([0x80, 201]).withUnsafeBytes { #expect(PacketDemultiplexer.classify($0) == .srtcp) }
    }

    @Test("DTLS roles from a=setup (RFC 8842 §5.1)")
    func roles() throws {
        #expect(try DTLSRole(local: .actpass, remote: .active) == .server)
        #expect(try DTLSRole(local: .actpass, remote: .passive) == .client)
        #expect(try DTLSRole(local: .active, remote: .actpass) == .client)
        #expect(try DTLSRole(local: .passive, remote: .actpass) == .server)
        #expect(try DTLSRole(local: .active, remote: .passive) == .client)
        for (local, remote) in [(SDPSetupRole.actpass, SDPSetupRole.actpass), (.active, .active), (.passive, .passive), (.holdconn, .active), (.actpass, .holdconn)] {
            #expect { try DTLSRole(local: local, remote: remote) } throws: { ($0 as? TransportError)?.code == .invalidArgument }
        }
    }

    @Test("fingerprints: RFC 8122 text form, SHA-256 of the DER certificate, bad input refused")
    func fingerprints() throws {
        let certificate = try DTLSCertificate()
        let text = certificate.fingerprint.description
        #expect(text.hasPrefix("sha-256 "))
        #expect(text.split(separator: " ")[1].split(separator: ":").count == 32)
        #expect(text.split(separator: " ")[1].allSatisfy { $0 == ":" || $0.isHexDigit && !$0.isLowercase })
        #expect(try SDPFingerprint(rfc8122: text) == certificate.fingerprint)
        #expect(try SDPFingerprint(rfc8122: "SHA-256 " + certificate.fingerprint.hexDigest.lowercased()) == certificate.fingerprint)
        // Loading the same PEM gives the same fingerprint; another certificate another one.
        let pem = try SelfSignedCertificate(commonName: "stored")
        let first = try DTLSCertificate(certificatePEM: pem.certificatePEM, privateKeyPEM: pem.privateKeyPEM)
        let again = try DTLSCertificate(certificatePEM: pem.certificatePEM, privateKeyPEM: pem.privateKeyPEM)
        #expect(again.fingerprint == first.fingerprint)
        #expect(try DTLSCertificate().fingerprint != certificate.fingerprint)
        let otherKey = try SelfSignedCertificate(commonName: "other").privateKeyPEM
        #expect { try DTLSCertificate(certificatePEM: pem.certificatePEM, privateKeyPEM: otherKey) } throws: {
            ($0 as? TransportError)?.code == .invalidArgument
        }
        for bad in ["sha-256", "md5 AB:CD", "sha-256 AB:CD", "sha-256 " + String(repeating: "ZZ:", count: 31) + "ZZ", ""] {
            #expect { try SDPFingerprint(rfc8122: bad) } throws: { ($0 as? TransportError)?.code == .invalidFingerprint }
        }
        #expect(throws: TransportError.self) { try DTLSCertificate(certificatePEM: "garbage", privateKeyPEM: "garbage") }
    }
}
