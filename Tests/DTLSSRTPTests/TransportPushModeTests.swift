import NIOCore
import RTP
import Testing
import TestSupport
@testable import DTLSSRTP

/// A transport whose owner reads the path and hands it each datagram (`init(path:configuration:)`,
/// as the forwarder does to save a task switch per packet): the decrypted packet comes back at
/// once, and the event stream carries only the session's news.
@Suite("DTLS-SRTP transport handed its datagrams (push mode)", .timeLimit(.minutes(1)))
struct TransportPushModeTests {
    @Test("receive(_:) returns the decrypted RTP and RTCP; forged, replayed and DTLS datagrams return nil and are counted; events carry no packets")
    func pushedDatagrams() async throws {
        let clientCertificate = try DTLSCertificate(commonName: "client")
        let serverCertificate = try DTLSCertificate(commonName: "server")
        let (a, b) = MemoryPath.pair()
        let client = try DTLSSRTPTransport(path: a, events: a.events, configuration: .init(
            certificate: clientCertificate, role: .client, remoteFingerprint: serverCertificate.fingerprint))
        let server = try DTLSSRTPTransport(path: b, configuration: .init(
            certificate: serverCertificate, role: .server, remoteFingerprint: clientCertificate.fingerprint))
        client.start()
        server.start()
        a.continuation.yield(.ready)
        server.pathBecameReady()

        // The owner's reader: the path's datagrams into the transport; the third SRTP datagram
        // is kept raw instead, for the attacker below.
        let reader = Task { () -> (returned: [TransportEvent], raw: ByteBuffer?) in
            var returned: [TransportEvent] = []
            for await event in b.events {
                guard case .received(let datagram) = event else { continue }
                let media = datagram.getInteger(at: datagram.readerIndex, as: UInt8.self).map { (128...191).contains($0) } ?? false
                if media, returned.count == 2 { return (returned, datagram) }
                if let packet = server.receive(datagram) { returned.append(packet) }
            }
            return (returned, nil)
        }
        _ = try await client.connected()
        _ = try await server.connected()

        let rtp = try rtpPacket(sequence: 7, ssrc: 0x3333, payload: "pushed")
        let pli = RTCPPacket.pictureLossIndication(RTCPPictureLossIndication(senderSSRC: 1, mediaSSRC: 2))
        try client.sendRTP(rtp)
        try client.sendRTCP(try RTCPPacket.serializeCompound([pli]))
        try client.sendRTP(try rtpPacket(sequence: 8, ssrc: 0x3333, payload: "caught"))
        let (returned, raw) = try await withTimeout("the three packets") { await reader.value }
        guard returned.count == 2, case .rtp(let clear) = returned[0], case .rtcp(let clearRTCP) = returned[1] else {
            Issue.record("expected RTP then RTCP, got \(returned)")
            return
        }
        #expect(clear == rtp)
        #expect(try RTCPPacket.parseCompound(clearRTCP) == [pli])
        #expect(server.statistics.rtpReceived == 1 && server.statistics.rtcpReceived == 1)

        // What an attacker on the path can send: a forged packet, a replay of a real one.
        let protected = try #require(raw)
        var forged = protected
        forged.setInteger(forged.getInteger(at: forged.writerIndex - 1, as: UInt8.self)! ^ 0xFF, at: forged.writerIndex - 1)
        #expect(server.receive(forged) == nil)
        #expect(server.statistics.authenticationFailures == 1)
        guard case .rtp(let caught)? = server.receive(protected) else {
            Issue.record("the real packet did not come back")
            return
        }
        #expect(try RTPPacket(parsing: caught).payload == ByteBuffer(string: "caught"))
        #expect(server.receive(protected) == nil, "a replay (RFC 3711 §3.3.2)")
        #expect(server.statistics.replaysDropped == 1 && server.statistics.rtpReceived == 2)
        #expect(server.events.queuedData == 0, "nothing was queued in the stream")

        // The path ends: the stream ends after the news it had (connected).
        server.pathEnded()
        var seen: [String] = []
        for await event in server.events {
            switch event {
            case .connected: seen.append("connected")
            case .rtp, .rtcp: seen.append("packet")
            case .failed: seen.append("failed")
            case .closedByPeer: seen.append("closed")
            }
        }
        #expect(seen == ["connected"])
        client.close()
        server.close()
    }
}
