import NIOCore
import RTP
import SDP
import Synchronization
import Testing
import TestSupport
@testable import DTLSSRTP

/// One end of an in-memory datagram link: what it sends arrives, in order, on the other end's
/// event stream. Proves the transport needs no ICE (docs/architecture.md).
final class MemoryPath: DatagramTransport {
    private let peer = Mutex<AsyncStream<DatagramEvent>.Continuation?>(nil)
    private let dropping = Mutex(false)
    let events: AsyncStream<DatagramEvent>
    let continuation: AsyncStream<DatagramEvent>.Continuation

    init() { (events, continuation) = AsyncStream.makeStream() }

    static func pair() -> (MemoryPath, MemoryPath) {
        let a = MemoryPath(), b = MemoryPath()
        a.peer.withLock { $0 = b.continuation }
        b.peer.withLock { $0 = a.continuation }
        return (a, b)
    }

    /// Drops everything sent from now on (a path that went dead).
    func drop() { dropping.withLock { $0 = true } }

    func send(_ datagram: ByteBuffer) throws {
        guard !dropping.withLock({ $0 }) else { return }
        peer.withLock { $0 }?.yield(.received(datagram, arrival: .now))
    }
}

@Suite("DTLS-SRTP transport over an in-memory datagram path")
struct DTLSSRTPTransportTests {
    static func transports(expectForClient: SDPFingerprint? = nil) throws -> (client: DTLSSRTPTransport, server: DTLSSRTPTransport, paths: (MemoryPath, MemoryPath)) {
        let clientCertificate = try DTLSCertificate(commonName: "client")
        let serverCertificate = try DTLSCertificate(commonName: "server")
        let (a, b) = MemoryPath.pair()
        let client = try DTLSSRTPTransport(path: a, events: a.events, configuration: .init(
            certificate: clientCertificate, role: .client, remoteFingerprint: expectForClient ?? serverCertificate.fingerprint,
            handshakeTimeout: .seconds(20)))
        let server = try DTLSSRTPTransport(path: b, events: b.events, configuration: .init(
            certificate: serverCertificate, role: .server, remoteFingerprint: clientCertificate.fingerprint, handshakeTimeout: .seconds(20)))
        return (client, server, (a, b))
    }

    /// The first RTP packet `transport` delivers.
    static func firstRTP(_ transport: DTLSSRTPTransport) async -> ByteBuffer? {
        for await event in transport.events { if case .rtp(let packet, _) = event { return packet } }
        return nil
    }

    @Test("the handshake completes once the path is ready, and RTP and RTCP cross encrypted both ways")
    func handshakeAndMedia() async throws {
        let (client, server, paths) = try Self.transports()
        client.start()
        server.start()
        paths.0.continuation.yield(.ready)
        paths.1.continuation.yield(.ready)
        let profile = try await client.connected()
        #expect(try await server.connected() == profile)
        #expect(profile == .aeadAES128GCM, "GCM is preferred on both sides")

        async let atServer = Self.firstRTP(server)
        try client.sendRTP(try rtpPacket(sequence: 1, ssrc: 0x1111, payload: "to the server"))
        let received = try #require(await atServer)
        #expect(try RTPPacket(parsing: received).payload == ByteBuffer(string: "to the server"))
        #expect(client.statistics.rtpSent == 1 && server.statistics.rtpReceived == 1)
        #expect(server.statistics.authenticationFailures == 0)
        client.close()
        server.close()
    }

    @Test("the client sends nothing before the path is ready")
    func waitsForThePath() async throws {
        let (client, server, paths) = try Self.transports()
        client.start()
        server.start()
        // Without `.ready` no ClientHello leaves; a marker datagram sent after proves the
        // client had its chance (events are ordered).
        #expect(throws: TransportError.self) { try client.sendRTP(try rtpPacket(sequence: 1, ssrc: 1, payload: "x")) }
        #expect(client.statistics.dtlsDatagramsSent == 0)
        paths.0.continuation.yield(.ready)
        paths.1.continuation.yield(.ready)
        _ = try await client.connected()
        #expect(client.statistics.dtlsDatagramsSent > 0)
        client.close()
        server.close()
    }

    @Test("a certificate that does not match the signed fingerprint is refused (RFC 8122 §5)")
    func fingerprintMismatch() async throws {
        let stranger = try DTLSCertificate(commonName: "mallory")
        let (client, server, paths) = try Self.transports(expectForClient: stranger.fingerprint)
        client.start()
        server.start()
        paths.0.continuation.yield(.ready)
        paths.1.continuation.yield(.ready)
        await #expect { try await client.connected() } throws: { ($0 as? TransportError)?.code == .fingerprintMismatch }
        client.close()
        server.close()
    }

    @Test("replacePath moves the session to a new path: keys stay, media flows on the new one")
    func replacePath() async throws {
        let (client, server, paths) = try Self.transports()
        client.start()
        server.start()
        paths.0.continuation.yield(.ready)
        paths.1.continuation.yield(.ready)
        _ = try await client.connected()
        _ = try await server.connected()
        paths.0.drop()
        paths.1.drop()
        let (c, s) = MemoryPath.pair()
        client.replacePath(c, events: c.events)
        server.replacePath(s, events: s.events)
        // The old paths end; that must not end the transports.
        paths.0.continuation.finish()
        paths.1.continuation.finish()
        async let atServer = Self.firstRTP(server)
        try client.sendRTP(try rtpPacket(sequence: 7, ssrc: 0x2222, payload: "after the move"))
        let received = try #require(await atServer)
        #expect(try RTPPacket(parsing: received).payload == ByteBuffer(string: "after the move"))
        client.close()
        server.close()
    }
}
