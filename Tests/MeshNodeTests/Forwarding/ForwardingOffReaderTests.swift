import DTLSSRTP
import Foundation
import Media
@testable import MeshNode
import NIOCore
import RTP
import Synchronization
import Testing
import TestSupport

/// A forwarded call decrypts each packet (and makes its transport-cc feedback) on the thread
/// that read it, and forwards it on the call's own thread (``ForwardingThread``): while the
/// forwarding is held up, a participant's transport still takes every datagram in at once, so
/// the reading thread never falls behind the forwarding and the feedback is never late for it
/// (docs/rooms.md "Cost per packet"). Forwarding in place, on the reading thread, made a slow
/// forwarding hold the datagrams in the socket and the senders cut their rates.
@Suite("Forwarded call: the reading thread does not wait for the forwarding", .serialized, .timeLimit(.minutes(1)))
struct ForwardingOffReaderTests {
    @Test("with the forwarding held 20 packets are taken in and none forwarded; released, all 40 copies go out")
    func readerDoesNotWaitForForwarding() async throws {
        NodeMetrics.bootstrap()
        let call = ForwardedCall(id: "rc-off-reader")
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
        // The feeder, as the GLib thread's tap: hands each datagram in and counts alice's SRTP.
        let taken = Mutex(0)
        let feeder = Task {
            for await event in aliceFar.events {
                aliceAtForwarder.handle(event)
                guard case .received(let datagram, _) = event, PacketDemultiplexer.classify(datagram) == .srtp else { continue }
                taken.withLock { $0 += 1 }
            }
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
        // A thread holds the forwarding until told to let go.
        let holding = Atomic(false), release = Atomic(false)
        Thread.detachNewThread {
            call.withForwardingHeld {
                holding.store(true, ordering: .sequentiallyConsistent)
                let deadline = ContinuousClock.now + .seconds(10)
                while !release.load(ordering: .sequentiallyConsistent), ContinuousClock.now < deadline { usleep(1_000) }
            }
        }
        try await waitUntil("the forwarding held") { holding.load(ordering: .sequentiallyConsistent) }
        for sequence: UInt16 in 1...20 { try alice.sendRTP(try ForwardedCallTests.video(sequence, ssrc: 0xA11CE)) }
        let tookAll = await (try? waitUntil("alice's 20 packets taken in while the forwarding is held", limit: .seconds(5)) {
            taken.withLock { $0 } >= 20
        }) != nil
        let sentWhileHeld = sent()
        release.store(true, ordering: .sequentiallyConsistent)
        #expect(tookAll, "the reading thread waited for the forwarding: \(taken.withLock { $0 }) of 20 taken in while it was held")
        #expect(sentWhileHeld == 0, "\(sentWhileHeld) copies were sent while the forwarding was held")
        try await waitUntil("bob's and carol's copies sent once released") { sent() >= 40 }
        #expect(sent() == 40)

        aliceFar.continuation.finish()
        await feeder.value
        quietEnd.finish()
        await call.close()
        alice.close()
        for other in others {
            other.reader.cancel()
            other.transport.close()
        }
    }
}
