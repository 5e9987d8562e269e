import NIOCore
import Testing
import TestSupport

@testable import DTLSSRTP
import SDP

/// The sans-IO DTLS layer driven in memory, datagram by datagram: no ICE, no sockets.
@Suite("DTLS connection in memory")
struct DTLSConnectionTests {
    struct Endpoints {
        var client: DTLSConnection
        var server: DTLSConnection
        var clientCertificate: DTLSCertificate
        var serverCertificate: DTLSCertificate
    }

    static func endpoints(
        clientProfiles: [SRTPProfile] = [.aes128CMHMACSHA1_80], serverProfiles: [SRTPProfile] = [.aes128CMHMACSHA1_80],
        clientExpects: SDPFingerprint? = nil
    ) throws -> Endpoints {
        let clientCertificate = try DTLSCertificate(commonName: "client")
        let serverCertificate = try DTLSCertificate(commonName: "server")
        return Endpoints(
            client: try DTLSConnection(certificate: clientCertificate, role: .client,
                                       remoteFingerprint: clientExpects ?? serverCertificate.fingerprint, profiles: clientProfiles),
            server: try DTLSConnection(certificate: serverCertificate, role: .server,
                                       remoteFingerprint: clientCertificate.fingerprint, profiles: serverProfiles),
            clientCertificate: clientCertificate, serverCertificate: serverCertificate)
    }

    /// Delivers every datagram each side produces to the other until neither has more,
    /// dropping those for which `drop` says so. Returns how many were delivered.
    @discardableResult
    static func run(_ e: Endpoints, drop: (Int, ByteBuffer) -> Bool = { _, _ in false }) -> (DTLSOutput, DTLSOutput, Int) {
        var toServer = e.client.start().datagrams
        var toClient: [ByteBuffer] = []
        var clientResult = DTLSOutput()
        var serverResult = DTLSOutput()
        var index = 0
        var rounds = 0
        while (!toServer.isEmpty || !toClient.isEmpty) && rounds < 50 {
            rounds += 1
            for datagram in toServer {
                index += 1
                if drop(index, datagram) { continue }
                let output = e.server.receive(datagram)
                toClient += output.datagrams
                if output.handshakeCompleted { serverResult.handshakeCompleted = true }
                if let failure = output.failure { serverResult.failure = failure }
            }
            toServer = []
            for datagram in toClient {
                index += 1
                if drop(index, datagram) { continue }
                let output = e.client.receive(datagram)
                toServer += output.datagrams
                if output.handshakeCompleted { clientResult.handshakeCompleted = true }
                if let failure = output.failure { clientResult.failure = failure }
            }
            toClient = []
        }
        return (clientResult, serverResult, index)
    }

    @Test("a handshake completes, negotiates DTLS 1.2 and the SRTP profile, and both sides export mirrored keys (RFC 5764 §4.2)")
    func handshakeAndKeys() throws {
        let e = try Self.endpoints(clientProfiles: [.aeadAES128GCM, .aes128CMHMACSHA1_80], serverProfiles: [.aeadAES128GCM])
        let (client, server, _) = Self.run(e)
        #expect(client.handshakeCompleted && server.handshakeCompleted)
        #expect(e.client.state == .connected && e.server.state == .connected)
        #expect(e.client.negotiatedDTLS12 && e.server.negotiatedDTLS12)
        #expect(e.client.selectedProfile == .aeadAES128GCM)
        let clientKeys = try e.client.exportSRTPKeys()
        let serverKeys = try e.server.exportSRTPKeys()
        #expect(clientKeys.localKeyAndSalt == serverKeys.remoteKeyAndSalt)
        #expect(clientKeys.remoteKeyAndSalt == serverKeys.localKeyAndSalt)
        #expect(clientKeys.localKeyAndSalt.count == 28)
        #expect(clientKeys.localKeyAndSalt != clientKeys.remoteKeyAndSalt)
    }

    @Test("every datagram of a flight fits the MTU and holds whole records")
    func flightsFitTheMTU() throws {
        let e = try Self.endpoints()
        var sizes: [Int] = []
        Self.run(e) { _, datagram in
            sizes.append(datagram.readableBytes)
            // Whole records only: the packer must reproduce the same bytes in the same split.
            #expect(DTLSRecordPacker.datagrams(from: datagram, mtu: 65_535).count == 1)
            return false
        }
        #expect(!sizes.isEmpty && sizes.allSatisfy { $0 <= 1200 })
    }

    @Test("lost flights are retransmitted when the RFC 6347 §4.2.4 timer runs out")
    func retransmission() async throws {
        let e = try Self.endpoints()
        // Lose the ClientHello.
        let hello = e.client.start()
        #expect(!hello.datagrams.isEmpty)
        let asked = ContinuousClock.now
        let timeout = try #require(e.client.retransmissionTimeout)
        let early = e.client.handleTimeout()
        #expect(timeout <= .milliseconds(250), "the first timer is 250 ms (DTLS.c), not OpenSSL's 1 s")
        // Only a timer that had time left when asked proves anything: a busy machine may have
        // let it run out in between.
        if ContinuousClock.now - asked < timeout {
            #expect(early.datagrams.isEmpty, "nothing is due before the timer runs out")
        }
        try await waitUntil("the retransmission timer to run out") { e.client.retransmissionTimeout == .zero }
        let resent = e.client.handleTimeout()
        #expect(!resent.datagrams.isEmpty)
        // RFC 6347 §4.2.4.1: the timer doubles at each retransmission.
        let next = try #require(e.client.retransmissionTimeout)
        #expect(next > .milliseconds(300) && next <= .milliseconds(500), "the second timer is 500 ms, got \(next)")
        // The retransmitted ClientHello starts the handshake.
        var toClient: [ByteBuffer] = []
        for datagram in resent.datagrams { toClient += e.server.receive(datagram).datagrams }
        var toServer: [ByteBuffer] = []
        for datagram in toClient { toServer += e.client.receive(datagram).datagrams }
        for datagram in toServer { toClient = e.server.receive(datagram).datagrams }
        for datagram in toClient { _ = e.client.receive(datagram) }
        #expect(e.client.state == .connected && e.server.state == .connected)
        #expect(e.client.retransmissionTimeout == nil)
    }

    @Test("a certificate that does not match fails with fingerprintMismatch naming both fingerprints, and the peer gets an alert")
    func fingerprintMismatch() throws {
        let other = try DTLSCertificate(commonName: "other")
        let e = try Self.endpoints(clientExpects: other.fingerprint)
        let (client, server, _) = Self.run(e)
        let failure = try #require(client.failure)
        #expect(failure.code == .fingerprintMismatch)
        #expect(failure.reason.contains(other.fingerprint.hexDigest))
        #expect(failure.reason.contains(e.serverCertificate.fingerprint.hexDigest))
        #expect(!client.handshakeCompleted)
        // The server saw the bad_certificate alert and failed too.
        #expect(server.failure?.code == .handshakeFailed)
        #expect(throws: TransportError.self) { try e.client.exportSRTPKeys() }
    }

    @Test("the server also checks the client's certificate")
    func serverChecksClient() throws {
        let clientCertificate = try DTLSCertificate(commonName: "client")
        let serverCertificate = try DTLSCertificate(commonName: "server")
        let stranger = try DTLSCertificate(commonName: "stranger")
        let e = Endpoints(
            client: try DTLSConnection(certificate: clientCertificate, role: .client, remoteFingerprint: serverCertificate.fingerprint, profiles: [.aeadAES128GCM]),
            server: try DTLSConnection(certificate: serverCertificate, role: .server, remoteFingerprint: stranger.fingerprint, profiles: [.aeadAES128GCM]),
            clientCertificate: clientCertificate, serverCertificate: serverCertificate)
        let (_, server, _) = Self.run(e)
        #expect(server.failure?.code == .fingerprintMismatch)
        #expect(e.server.state != .connected)
    }

    @Test("no common SRTP profile fails the session (RFC 5764 §4.1.2)")
    func noCommonProfile() throws {
        let e = try Self.endpoints(clientProfiles: [.aeadAES128GCM], serverProfiles: [.aes128CMHMACSHA1_80])
        let (client, server, _) = Self.run(e)
        #expect(!(client.handshakeCompleted && server.handshakeCompleted))
        #expect(client.failure?.code == .noSRTPProfile || client.failure?.code == .handshakeFailed || server.failure != nil)
    }

    @Test("close sends close_notify and the peer reports it (RFC 5246 §7.2.1)")
    func closeNotify() throws {
        let e = try Self.endpoints()
        Self.run(e)
        let closing = e.client.close()
        #expect(!closing.datagrams.isEmpty)
        var sawClose = false
        for datagram in closing.datagrams { sawClose = sawClose || e.server.receive(datagram).closedByPeer }
        #expect(sawClose)
        #expect(e.server.state == .closed && e.client.state == .closed)
        #expect(e.client.close().datagrams.isEmpty, "close is idempotent")
    }

    /// RFC 9147 §5.3: a DTLS 1.3 client puts DTLS 1.2 (0xfefd) in legacy_version and lists
    /// 1.3 and 1.2 in supported_versions. We must answer with a DTLS 1.2 ServerHello.
    @Test("a ClientHello offering DTLS 1.3 and 1.2 gets a DTLS 1.2 ServerHello")
    func dtls13ClientHelloGetsDTLS12() throws {
        let clientCertificate = try DTLSCertificate(commonName: "dtls13-client")
        let server = try DTLSConnection(certificate: try DTLSCertificate(commonName: "server"), role: .server,
                                        remoteFingerprint: clientCertificate.fingerprint, profiles: [.aes128CMHMACSHA1_80])
        let output = server.receive(DTLS13ClientHello.datagram())
        #expect(output.failure == nil, "\(String(describing: output.failure))")
        let first = try #require(output.datagrams.first)
        let bytes = Array(first.readableBytesView)
        try #require(bytes.count > 27)
        #expect(bytes[0] == 22, "a handshake record")
        #expect(bytes[1] == 0xFE && bytes[2] == 0xFD, "record version DTLS 1.2")
        #expect(bytes[13] == 2, "ServerHello")
        #expect(bytes[25] == 0xFE && bytes[26] == 0xFD, "server_version DTLS 1.2")
        #expect(server.state == .handshaking)
    }

    @Test("the record packer keeps records whole and packs small ones together")
    func recordPacker() {
        func record(_ length: Int, type: UInt8 = 22) -> [UInt8] {
            [type, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 1, UInt8(length >> 8), UInt8(length & 0xFF)] + [UInt8](repeating: 7, count: length)
        }
        let three = record(100) + record(200) + record(1000)
        let packed = DTLSRecordPacker.datagrams(from: ByteBuffer(bytes: three), mtu: 1200)
        #expect(packed.map(\.readableBytes) == [113 + 213, 1013])
        let oversized = DTLSRecordPacker.datagrams(from: ByteBuffer(bytes: record(1500)), mtu: 1200)
        #expect(oversized.map(\.readableBytes) == [1513])
        let truncated = DTLSRecordPacker.datagrams(from: ByteBuffer(bytes: record(10) + [22, 0xFE]), mtu: 1200)
        #expect(truncated.map(\.readableBytes) == [23, 2])
        #expect(DTLSRecordPacker.datagrams(from: ByteBuffer(), mtu: 1200).isEmpty)
    }
}

/// A DTLS 1.3-style ClientHello built by hand (RFC 9147 §5.3, RFC 8446 §4.1.2): what a
/// DTLS 1.3 WebRTC stack sends first.
enum DTLS13ClientHello {
    static func datagram() -> ByteBuffer {
        func u16(_ value: Int) -> [UInt8] { [UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)] }
        func u24(_ value: Int) -> [UInt8] { [UInt8(value >> 16 & 0xFF)] + u16(value) }
        func ext(_ type: Int, _ data: [UInt8]) -> [UInt8] { u16(type) + u16(data.count) + data }
        let extensions =
            ext(43, [4] + u16(0xFEFC) + u16(0xFEFD))  // supported_versions: DTLS 1.3, DTLS 1.2
            + ext(10, u16(4) + u16(0x0017) + u16(0x001D))  // supported_groups: secp256r1, x25519
            + ext(13, u16(6) + u16(0x0403) + u16(0x0804) + u16(0x0401))  // signature_algorithms
            + ext(11, [1, 0])  // ec_point_formats: uncompressed
            + ext(51, u16(36) + u16(0x001D) + u16(32) + [UInt8](repeating: 9, count: 32))  // key_share (x25519)
            + ext(14, u16(4) + u16(0x0007) + u16(0x0001) + [0])  // use_srtp
            + ext(23, [])  // extended_master_secret
            + ext(0xFF01, [0])  // renegotiation_info
        var body: [UInt8] = u16(0xFEFD)  // legacy_version
        body += [UInt8](repeating: 0x42, count: 32)  // random
        body += [0]  // legacy_session_id
        body += [0]  // legacy_cookie
        body += u16(6) + u16(0x1301) + u16(0xC02B) + u16(0xC02F)  // TLS_AES_128_GCM_SHA256, ECDHE-*-AES128-GCM-SHA256
        body += [1, 0]  // compression: null
        body += u16(extensions.count) + extensions
        let handshake: [UInt8] = [1] + u24(body.count) + u16(0) + u24(0) + u24(body.count) + body
        let record: [UInt8] = [22] + u16(0xFEFD) + u16(0) + [0, 0, 0, 0, 0, 0] + u16(handshake.count) + handshake
        return ByteBuffer(bytes: record)
    }
}
