import NIOCore
import RTP
import Synchronization
import Testing
import TestSupport
@testable import DTLSSRTP

/// A forwarder's session reads its ICE agent's events itself and hands each datagram to the
/// transport (``DTLSSRTPTransport/handle(_:)``), and the transport hands each packet to the
/// forwarder's handler (``DTLSSRTPTransport/deliverPackets(to:)``): no stream and no task in
/// between, so no thread wakes per packet on the way.
@Suite("DTLS-SRTP transport: datagrams handed in, packets handed over", .timeLimit(.minutes(1)))
struct TransportHandOverTests {
    final class Received: Sendable {
        let sequences = Mutex<[UInt16]>([])
        let rtcp = Mutex(0)
    }

    @Test("each SRTP datagram handed in reaches the handler before handle(_:) returns; the handshake and close_notify still come as events")
    func handedInAndHandedOver() async throws {
        let clientCertificate = try DTLSCertificate(commonName: "client")
        let serverCertificate = try DTLSCertificate(commonName: "server")
        let (a, b) = MemoryPath.pair()
        // The server's path events only end: what arrives comes through handle(_:).
        let (quiet, quietEnd) = AsyncStream<DatagramEvent>.makeStream()
        let client = try DTLSSRTPTransport(path: a, events: a.events, configuration: .init(
            certificate: clientCertificate, role: .client, remoteFingerprint: serverCertificate.fingerprint))
        let server = try DTLSSRTPTransport(path: b, events: quiet, configuration: .init(
            certificate: serverCertificate, role: .server, remoteFingerprint: clientCertificate.fingerprint))
        let received = Received()
        server.deliverPackets { event in
            switch event {
            case .rtp(let packet, _): received.sequences.withLock { $0.append((try? RTPPacket(parsing: packet))?.sequenceNumber ?? 0) }
            case .rtcp: received.rtcp.withLock { $0 += 1 }
            default: Issue.record("a state change went to the packet handler: \(event)")
            }
        }
        // The caller's own reader: hands each datagram in and checks that an SRTP one was
        // delivered by the time handle(_:) returned.
        let feeder = Task {
            var late = 0
            for await event in b.events {
                let before = received.sequences.withLock { $0.count } + received.rtcp.withLock { $0 }
                server.handle(event)
                guard case .received(let datagram, _) = event, PacketDemultiplexer.classify(datagram) == .srtp || PacketDemultiplexer.classify(datagram) == .srtcp
                else { continue }
                if received.sequences.withLock({ $0.count }) + received.rtcp.withLock({ $0 }) != before + 1 { late += 1 }
            }
            return late
        }
        client.start()
        server.start()
        a.continuation.yield(.ready)
        server.handle(.ready)
        _ = try await client.connected()
        _ = try await server.connected()

        for sequence in 1...20 { try client.sendRTP(try rtpPacket(sequence: UInt16(sequence), ssrc: 0x3333, payload: "packet \(sequence)")) }
        try client.sendRTCP(ByteBuffer(bytes: [0x80, 201, 0, 1, 0, 0, 0x33, 0x33]))
        try await waitUntil("every packet handed over") {
            received.sequences.withLock { $0.count } == 20 && received.rtcp.withLock { $0 } == 1
        }
        #expect(received.sequences.withLock { $0 } == Array(1...20), "in order")
        #expect(server.statistics.rtpReceived == 20 && server.statistics.rtcpReceived == 1)
        #expect(server.statistics.packetsHandedOver == 21, "each counted as handed over: \(server.statistics)")
        #expect(server.events.queuedData == 0, "a handed-over packet is not also queued")

        client.close()
        let events = try await withTimeout("the server's events") {
            var seen: [String] = []
            for await event in server.events {
                switch event {
                case .connected: seen.append("connected")
                case .closedByPeer: seen.append("closed")
                case .rtp, .rtcp: seen.append("packet")
                case .failed(let error): seen.append("failed \(error)")
                }
            }
            return seen
        }
        #expect(events == ["connected", "closed"])
        quietEnd.finish()
        a.continuation.finish()
        b.continuation.finish()
        #expect(await feeder.value == 0, "a packet reached the handler after handle(_:) returned")
        server.close()
    }
}
