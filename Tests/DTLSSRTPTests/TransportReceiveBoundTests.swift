import MeshCore
import NIOCore
import RTP
import Testing
import TestSupport
@testable import DTLSSRTP

/// The transport's stream bounds decrypted packets for a reader that falls behind, and never
/// drops its control events (docs/security.md).
@Suite("DTLS-SRTP transport receive bound", .timeLimit(.minutes(1)))
struct TransportReceiveBoundTests {
    @Test("a peer floods a transport nobody reads: at most the bound is queued, the rest counted, close_notify still arrives")
    func floodBeyondTheBound() async throws {
        let (client, server, paths) = try DTLSSRTPTransportTests.transports()
        client.start()
        server.start()
        paths.0.continuation.yield(.ready)
        paths.1.continuation.yield(.ready)
        _ = try await client.connected()
        _ = try await server.connected()

        let bound = DTLSSRTPTransport.receiveQueueBound
        let sent = 3 * bound
        for sequence in 0..<sent {
            try client.sendRTP(try rtpPacket(sequence: UInt16(sequence), ssrc: 0x2222, payload: "flood \(sequence)"))
        }
        try await waitUntil("the server to take in the flood") {
            server.statistics.rtpReceived + server.statistics.receiveQueueDrops == sent
        }
        #expect(server.statistics.rtpReceived == bound && server.statistics.receiveQueueDrops == sent - bound)
        #expect(server.events.queuedData == bound && server.events.droppedData == sent - bound)
        // A control event after the flood.
        client.close()

        let seen = try await withTimeout("the server's queued events") {
            var connected = 0, packets: [UInt16] = [], closed = 0
            for await event in server.events {
                switch event {
                case .connected: connected += 1
                case .rtp(let packet, _): packets.append(try RTPPacket(parsing: packet).sequenceNumber)
                case .closedByPeer: closed += 1
                case .rtcp, .failed: break
                }
            }
            return (connected, packets, closed)
        }
        #expect(seen.0 == 1 && seen.2 == 1)
        // The oldest packets were kept, as a socket buffer keeps them.
        #expect(seen.1 == (0..<bound).map { UInt16($0) })
        server.close()
    }
}
