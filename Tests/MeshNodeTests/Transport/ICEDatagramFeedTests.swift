import DTLSSRTP
import ICE
import MeshNode
import NIOCore
import Testing
import TestSupport

/// ``ICEDatagramFeed`` hands an ICE agent's datagrams to a DTLS-SRTP transport on the reader's
/// thread. A call that answers as DTLS server (RFC 5763 §5, `a=setup:passive`) may get the peer's
/// ClientHello as soon as ICE connects, before its transport exists: the feed keeps what came
/// early (bounded) and hands it in when the transport is attached.
@Suite("ICE datagram feed: early datagrams wait for the transport, bounded", .timeLimit(.minutes(1)))
struct ICEDatagramFeedTests {
    /// The client's path: each datagram arrives at once on the server's feed, as the agent's reader
    /// would pass it.
    struct IntoFeed: DatagramTransport {
        let feed: ICEDatagramFeed
        func send(_ datagram: ByteBuffer) throws { feed.feed(.dataReceived(datagram, arrival: .now)) }
        func isReady() async -> Bool { true }
    }

    /// The server's path back to the client's events.
    struct IntoStream: DatagramTransport {
        let continuation: AsyncStream<DatagramEvent>.Continuation
        func send(_ datagram: ByteBuffer) throws { continuation.yield(.received(datagram, arrival: .now)) }
        func isReady() async -> Bool { true }
    }

    @Test("a ClientHello that arrives before the server's transport exists is handed in when it is attached; the handshake completes")
    func clientHelloBeforeAttach() async throws {
        let clientCertificate = try DTLSCertificate(commonName: "client")
        let serverCertificate = try DTLSCertificate(commonName: "server")
        let feed = ICEDatagramFeed()
        let (toClient, clientEnd) = AsyncStream<DatagramEvent>.makeStream()
        let client = try DTLSSRTPTransport(path: IntoFeed(feed: feed), events: toClient, configuration: .init(
            certificate: clientCertificate, role: .client, remoteFingerprint: serverCertificate.fingerprint))
        client.start()  // its path is ready: the ClientHello goes out into the feed
        try await waitUntil("the ClientHello sent") { client.statistics.dtlsDatagramsSent >= 1 }

        let server = try DTLSSRTPTransport(path: IntoStream(continuation: clientEnd), events: feed.events, configuration: .init(
            certificate: serverCertificate, role: .server, remoteFingerprint: clientCertificate.fingerprint))
        feed.attach(server)
        // Handed in by attach itself, before the retransmission timer (1 s) could resend it.
        #expect(server.statistics.dtlsDatagramsReceived >= 1, "the early ClientHello reached the server")
        #expect(feed.droppedBeforeAttach == 0)
        server.start()
        _ = try await withTimeout("the server connected") { try await server.connected() }
        _ = try await withTimeout("the client connected") { try await client.connected() }
        client.close()
        server.close()
        feed.finish()
        clientEnd.finish()
    }

    @Test("at most earlyBound datagrams wait; the rest are dropped and counted (a flood before the transport costs the bound)")
    func earlyDatagramsBounded() async throws {
        let certificate = try DTLSCertificate(commonName: "server")
        let feed = ICEDatagramFeed()
        let flood = ICEDatagramFeed.earlyBound + 36
        for index in 0..<flood {
            // SRTP-looking (RFC 7983: first byte 128–191): refused without keys, counted as such.
            var datagram = ByteBuffer(bytes: [0x80, 0x60, 0, UInt8(index & 0xFF), 0, 0, 0, 1, 0, 0, 0x12, 0x34])
            datagram.writeBytes(Array(repeating: UInt8(0), count: 20))
            feed.feed(.dataReceived(datagram, arrival: .now))
        }
        #expect(feed.droppedBeforeAttach == flood - ICEDatagramFeed.earlyBound)
        let (quiet, end) = AsyncStream<DatagramEvent>.makeStream()
        let server = try DTLSSRTPTransport(path: IntoStream(continuation: end), events: feed.events, configuration: .init(
            certificate: certificate, role: .server, remoteFingerprint: try DTLSCertificate(commonName: "client").fingerprint))
        feed.attach(server)
        #expect(server.statistics.otherDrops == ICEDatagramFeed.earlyBound, "the kept ones were handed in: \(server.statistics)")
        server.close()
        feed.finish()
        end.finish()
        _ = quiet
    }
}
