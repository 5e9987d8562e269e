import DTLSSRTP
import Media
@testable import MeshNode
import NIOCore
import RTP
import Synchronization
import Testing
import TestSupport

/// A forwarded call forwards each packet on the thread that decrypted it, under the call's lock:
/// by the time a participant's transport has taken a datagram in (``DTLSSRTPTransport/handle(_:)``,
/// as the GLib thread's tap calls it), the copies to the others are protected and sent. Handing
/// packets to a task or the actor instead woke a thread per packet (docs/rooms.md "Cost per packet").
@Suite("Forwarded call: a packet is forwarded where it is decrypted", .serialized, .timeLimit(.minutes(1)))
struct ForwardedInPlaceTests {
    @Test("each of alice's packets handed to her transport is sent to bob and carol before handle(_:) returns")
    func forwardedBeforeHandleReturns() async throws {
        NodeMetrics.bootstrap()
        let call = ForwardedCall(id: "rc-in-place")
        let forwarderCertificate = try DTLSCertificate(commonName: "forwarder")
        // Alice's side: the forwarder's transport reads nothing itself; a feeder hands it her datagrams.
        let aliceCertificate = try DTLSCertificate(commonName: "alice")
        let (aliceNear, aliceFar) = ForwarderLinkEnd.pair()
        let (quiet, quietEnd) = AsyncStream<DatagramEvent>.makeStream()
        let alice = try DTLSSRTPTransport(path: aliceNear, events: aliceNear.events, configuration: .init(
            certificate: aliceCertificate, role: .client, remoteFingerprint: forwarderCertificate.fingerprint))
        let aliceAtForwarder = try DTLSSRTPTransport(path: aliceFar, events: quiet, configuration: .init(
            certificate: forwarderCertificate, role: .server, remoteFingerprint: aliceCertificate.fingerprint))
        // Bob and carol: ordinary transports on both ends.
        let others = [try await ForwardedCallTests.join("bob", videoSSRC: 0xB0B, call: call),
                      try await ForwardedCallTests.join("carol", videoSSRC: 0xCA201, call: call)]
        try await call.add("alice", transport: aliceAtForwarder, sources: [ForwardedSource(kind: .video, ssrc: 0xA11CE, payloadType: 96)],
                           extensions: ForwardingExtensionIDs(transportWideCC: 3))
        let receivers = others.map(\.atForwarder)
        func sent() -> Int { receivers.reduce(0) { $0 + $1.statistics.rtpSent } }
        // The feeder: hands each datagram in and, for alice's SRTP, checks that both copies were sent when handle(_:) returned.
        let feeder = Task {
            var late = 0, checked = 0
            for await event in aliceFar.events {
                let before = sent()
                aliceAtForwarder.handle(event)
                guard case .received(let datagram, _) = event, PacketDemultiplexer.classify(datagram) == .srtp else { continue }
                checked += 1
                if sent() < before + 2 { late += 1 }
            }
            return (late, checked)
        }
        alice.start()
        aliceAtForwarder.start()
        aliceAtForwarder.handle(.ready)
        _ = try await withTimeout("alice DTLS") { try await alice.connected() }
        for participant in await call.participants {
            for stream in await call.outgoingStreams(to: participant) {
                try await call.bind(participant, ssrc: stream.ssrc, ForwardingBinding(mid: stream.from, payloadType: 100, retransmissionPayloadType: 101))
            }
        }
        for sequence: UInt16 in 1...20 { try alice.sendRTP(try ForwardedCallTests.video(sequence, ssrc: 0xA11CE)) }
        try await waitUntil("bob's and carol's copies sent") { sent() >= 40 }

        aliceFar.continuation.finish()
        let (late, checked) = await feeder.value
        #expect(checked == 20)
        #expect(late == 0, "\(late) of alice's packets were forwarded after handle(_:) returned")
        quietEnd.finish()
        await call.close()
        alice.close()
        for other in others {
            other.reader.cancel()
            other.transport.close()
        }
    }
}
