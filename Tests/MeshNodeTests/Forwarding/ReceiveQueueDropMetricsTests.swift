import DTLSSRTP
import ICE
import Media
import MeshCore
@testable import MeshNode
import NIOCore
import RTP
import Testing
import TestSupport

/// A participant floods the forwarder faster than it reads (docs/security.md): the bounded
/// receive queues drop the excess, and the operator sees how much on `/metrics`
/// (`meshnode_media_receive_queue_drops_total{queue=…}`), not only in a log line.
@Suite("Receive queue drops on /metrics", .serialized, .timeLimit(.minutes(1)))
struct ReceiveQueueDropMetricsTests {
    /// The value of `meshnode_media_receive_queue_drops_total{queue="QUEUE"}` now (0 before the first drop).
    static func dropped(_ queue: String) -> Int {
        let prefix = "meshnode_media_receive_queue_drops_total{queue=\"\(queue)\"} "
        let line = NodeMetrics.render().split(separator: "\n").first { $0.hasPrefix(prefix) }
        return line.flatMap { Int($0.dropFirst(prefix.count)) } ?? 0
    }

    @Test("a participant floods its transport and its ICE path before the forwarder reads: the drops of each queue reach /metrics once")
    func floodedParticipantIsCounted() async throws {
        NodeMetrics.bootstrap()
        let call = ForwardedCall(id: "rc-drops")
        defer { Task { await call.close() } }
        let before = (transport: Self.dropped("transport"), path: Self.dropped("path"), ice: Self.dropped("ice"))

        // The attacker's DTLS-SRTP session to the forwarder, up before the forwarder reads it.
        let attackerCertificate = try DTLSCertificate(commonName: "mallory")
        let forwarderCertificate = try DTLSCertificate(commonName: "forwarder")
        let (near, far) = ForwarderLinkEnd.pair()
        let attacker = try DTLSSRTPTransport(path: near, events: near.events, configuration: .init(
            certificate: attackerCertificate, role: .client, remoteFingerprint: forwarderCertificate.fingerprint))
        let forwarder = try DTLSSRTPTransport(path: far, events: far.events, configuration: .init(
            certificate: forwarderCertificate, role: .server, remoteFingerprint: attackerCertificate.fingerprint))
        attacker.start()
        forwarder.start()
        _ = try await withTimeout("DTLS") { try await attacker.connected() }
        _ = try await withTimeout("DTLS") { try await forwarder.connected() }
        let bound = DTLSSRTPTransport.receiveQueueBound
        let sent = 3 * bound
        for sequence in 0..<sent {
            try attacker.sendRTP(try ForwardedCallTests.video(UInt16(sequence), ssrc: 0x4D41))
        }
        try await waitUntil("the forwarder's transport to take in the flood") {
            forwarder.statistics.rtpReceived + forwarder.statistics.receiveQueueDrops == sent
        }
        #expect(forwarder.statistics.receiveQueueDrops == sent - bound)

        // The queue in front of the transport (the session's copy of the agent's events),
        // flooded the same way: past its bound nothing more is queued.
        let (copy, producer) = BoundedEventStream<ICEAgentEvent>.makeStream(dataBound: 8, isData: \.isData)
        for index in 0..<20 { producer.yield(.dataReceived(ByteBuffer(integer: UInt32(index)), arrival: .now)) }
        #expect(copy.droppedData == 12)

        try await call.add("mallory", transport: forwarder, sources: [ForwardedSource(kind: .video, ssrc: 0x4D41, payloadType: 96)],
                           extensions: ForwardingExtensionIDs(transportWideCC: 3)) {
            ReceiveQueueDrops(path: copy.droppedData)
        }
        // Reported every second while the participant is in, and once more when it leaves.
        try await waitUntil("the drops on /metrics") { Self.dropped("transport") - before.transport == sent - bound }
        #expect(Self.dropped("path") - before.path == 12)
        await call.remove("mallory", reason: "the test ends")
        // Counted once: the last report at the leave adds nothing that was counted already.
        #expect(Self.dropped("transport") - before.transport == sent - bound)
        #expect(Self.dropped("path") - before.path == 12)
        #expect(Self.dropped("ice") - before.ice == 0)
        attacker.close()
    }
}
