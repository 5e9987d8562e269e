import DTLSSRTP
import Media
@testable import MeshNode
import NIOCore
import RTP
import SDP
import Synchronization
import Testing
import TestSupport

/// An in-memory datagram link: what one end sends arrives on the other's events, in order,
/// stamped with the time it was sent (a link without delay: it arrived then).
final class ForwarderLinkEnd: DatagramTransport {
    private let peer = Mutex<AsyncStream<DatagramEvent>.Continuation?>(nil)
    let events: AsyncStream<DatagramEvent>
    let continuation: AsyncStream<DatagramEvent>.Continuation

    /// Drops the `nth` SRTP datagram sent with `ssrc` (the RTP header stays in the clear under SRTP, RFC 3711 §3.1).
    let loss = Mutex<(ssrc: UInt32, nth: Int, seen: Int)?>(nil)

    /// While set, what this end sends waits here, stamped, instead of reaching the peer's
    /// events: a receiver whose queues are that far behind (``releaseHeld()`` delivers it).
    private let held = Mutex<[(datagram: ByteBuffer, sent: ContinuousClock.Instant)]?>(nil)

    init() { (events, continuation) = AsyncStream.makeStream() }

    /// From now on, what this end sends is held back until ``releaseHeld()``.
    func holdSent() { held.withLock { $0 = $0 ?? [] } }

    /// Delivers everything held, at once, each with the time it was sent, and stops holding.
    func releaseHeld() {
        let datagrams = held.withLock { held in defer { held = nil }; return held ?? [] }
        for (datagram, sent) in datagrams { peer.withLock { $0 }?.yield(.received(datagram, arrival: sent)) }
    }

    static func pair() -> (ForwarderLinkEnd, ForwarderLinkEnd) {
        let a = ForwarderLinkEnd(), b = ForwarderLinkEnd()
        a.peer.withLock { $0 = b.continuation }
        b.peer.withLock { $0 = a.continuation }
        a.continuation.yield(.ready)
        b.continuation.yield(.ready)
        return (a, b)
    }

    func send(_ datagram: ByteBuffer) throws {
        if let first = datagram.getInteger(at: datagram.readerIndex, as: UInt8.self), first >> 6 == 2, !RTPPacket.isRTCP(datagram),
           let ssrc = datagram.getInteger(at: datagram.readerIndex + 8, as: UInt32.self) {
            let dropped = loss.withLock { rule -> Bool in
                guard var current = rule, current.ssrc == ssrc else { return false }
                current.seen += 1
                rule = current
                return current.seen == current.nth
            }
            if dropped { return }
        }
        let sent = ContinuousClock.now
        let wasHeld = held.withLock { held -> Bool in
            guard held != nil else { return false }
            held?.append((datagram, sent))
            return true
        }
        if !wasHeld { peer.withLock { $0 }?.yield(.received(datagram, arrival: sent)) }
    }
}

/// What one participant's side of the test received, read from its own transport.
final class ForwarderInbox: Sendable {
    let rtp = Mutex<[RTPPacket]>([])
    let rtcp = Mutex<[RTCPPacket]>([])
}

/// The forwarding core behind real DTLS-SRTP sessions, one per participant (docs/rooms.md): the
/// part of `meshnode serve --forwarder` that is built; ICE and the SDP are the next session's.
@Suite("Forwarded call over DTLS-SRTP: three participants, NACK over SRTCP, an impostor, /metrics", .serialized, .timeLimit(.minutes(2)))
struct ForwardedCallTests {
    struct Participant {
        let name: String
        let transport: DTLSSRTPTransport
        let inbox: ForwarderInbox
        let reader: Task<Void, Never>
        let videoSSRC: UInt32
        /// The forwarder's end of the link, which sends to the participant.
        let downlink: ForwarderLinkEnd
        /// The forwarder's transport to the participant.
        let atForwarder: DTLSSRTPTransport
    }

    /// A participant's DTLS client and the forwarder's DTLS server over an in-memory link, both connected.
    static func join(_ name: String, videoSSRC: UInt32, call: ForwardedCall) async throws -> Participant {
        let participantCertificate = try DTLSCertificate(commonName: name)
        let forwarderCertificate = try DTLSCertificate(commonName: "forwarder")
        let (near, far) = ForwarderLinkEnd.pair()
        let client = try DTLSSRTPTransport(path: near, events: near.events, configuration: .init(
            certificate: participantCertificate, role: .client, remoteFingerprint: forwarderCertificate.fingerprint))
        let server = try DTLSSRTPTransport(path: far, events: far.events, configuration: .init(
            certificate: forwarderCertificate, role: .server, remoteFingerprint: participantCertificate.fingerprint))
        client.start()
        server.start()
        try await call.add(name, transport: server, sources: [ForwardedSource(kind: .video, ssrc: videoSSRC, payloadType: 96)],
                           extensions: ForwardingExtensionIDs(transportWideCC: 3))
        _ = try await withTimeout("\(name) DTLS") { try await client.connected() }
        let inbox = ForwarderInbox()
        let reader = Task {
            for await event in client.events {
                switch event {
                case .rtp(let bytes, _): if let packet = try? RTPPacket(parsing: bytes) { inbox.rtp.withLock { $0.append(packet) } }
                case .rtcp(let bytes, _): if let packets = try? RTCPPacket.parseCompound(bytes) { inbox.rtcp.withLock { $0 += packets } }
                default: break
                }
            }
        }
        return Participant(name: name, transport: client, inbox: inbox, reader: reader, videoSSRC: videoSSRC, downlink: far, atForwarder: server)
    }

    static func video(_ sequence: UInt16, ssrc: UInt32) throws -> ByteBuffer {
        try RTPPacket(payloadType: 96, sequenceNumber: sequence, timestamp: UInt32(sequence) * 3000, ssrc: ssrc,
                      payload: ByteBuffer(bytes: [0x10, 0, 0, 0] + Array(repeating: UInt8(sequence & 0xFF), count: 500))).serialized()
    }

    @Test("three participants: each receives the others under the forwarder's SSRCs, a NACK over SRTCP is answered from the cache, an impostor's packets go nowhere, /metrics counts")
    func threeParticipants() async throws {
        NodeMetrics.bootstrap()
        let call = ForwardedCall(id: "rc-test")
        let alice = try await Self.join("alice", videoSSRC: 0xA11CE, call: call)
        let bob = try await Self.join("bob", videoSSRC: 0xB0B, call: call)
        let carol = try await Self.join("carol", videoSSRC: 0xCA201, call: call)
        let everyone = [alice, bob, carol]
        for participant in everyone {
            for stream in await call.outgoingStreams(to: participant.name) {
                try await call.bind(participant.name, ssrc: stream.ssrc, ForwardingBinding(mid: stream.from, payloadType: 100, retransmissionPayloadType: 101))
            }
        }
        let streamsAtBob = await call.outgoingStreams(to: "bob")
        let aliceAtBob = try #require(streamsAtBob.first { $0.from == "alice" })
        bob.downlink.loss.withLock { $0 = (aliceAtBob.ssrc, 10, 0) }
        for sequence: UInt16 in 1...20 {
            for participant in everyone { try participant.transport.sendRTP(try Self.video(sequence, ssrc: participant.videoSSRC)) }
        }
        for participant in everyone {
            let expected = participant.name == "bob" ? 39 : 40
            try await waitUntil("\(participant.name) gets \(expected) packets") { participant.inbox.rtp.withLock { $0.count } >= expected }
        }
        let atBob = bob.inbox.rtp.withLock { $0 }
        #expect(Set(atBob.map(\.ssrc)) == Set(streamsAtBob.map(\.ssrc)), "bob sees only the forwarder's SSRCs")
        #expect(!atBob.contains { [0xA11CE, 0xCA201].contains($0.ssrc) } && atBob.allSatisfy { $0.payloadType == 100 })
        // Each participant asked its sources for a key frame when bound: alice got PLIs for her SSRC.
        try await waitUntil("alice gets a PLI") { alice.inbox.rtcp.withLock { $0.contains { if case .pictureLossIndication(let p) = $0 { p.mediaSSRC == 0xA11CE } else { false } } } }

        // Bob lost alice's packet 10 on his downlink: the gap in his numbering names it, and his NACK
        // over SRTCP is answered from the forwarder's cache (alice is not asked).
        let fromAlice = atBob.filter { $0.ssrc == aliceAtBob.ssrc }
        #expect(fromAlice.count == 19)
        let lost = try #require(zip(fromAlice, fromAlice.dropFirst()).first { $1.sequenceNumber != $0.sequenceNumber &+ 1 }).0.sequenceNumber &+ 1
        try bob.transport.sendRTCP(try RTCPPacket.serializeCompound([.nack(RTCPGenericNACK(senderSSRC: 0xB0B, mediaSSRC: aliceAtBob.ssrc, lostSequenceNumbers: [lost]))]))
        // In the RTX stream (RFC 4588): SRTP does not protect one sequence number twice.
        let rtxSSRC = try #require(aliceAtBob.retransmissionSSRC)
        try await waitUntil("bob gets the retransmission") { bob.inbox.rtp.withLock { $0.contains { $0.ssrc == rtxSSRC } } }
        let rtx = try #require(bob.inbox.rtp.withLock { $0.first { $0.ssrc == rtxSSRC } })
        let repaired = try RTXPacket.unwrap(rtx, originalPayloadType: 100, originalSSRC: aliceAtBob.ssrc)
        #expect(repaired.sequenceNumber == lost)
        #expect(repaired.payload.getInteger(at: repaired.payload.readerIndex + 4, as: UInt8.self) == 10, "alice's packet 10")
        #expect(!alice.inbox.rtcp.withLock { $0.contains { if case .nack = $0 { true } else { false } } })

        // Mallory inside bob's session sends under carol's SSRC: nobody gets it.
        let before = alice.inbox.rtp.withLock { $0.count }
        try bob.transport.sendRTP(try Self.video(500, ssrc: 0xCA201))
        try bob.transport.sendRTP(try Self.video(21, ssrc: 0xB0B))
        try await waitUntil("alice gets bob's honest packet") { alice.inbox.rtp.withLock { $0.count } == before + 1 }
        let counters = await call.counters
        #expect(counters.rejected == 1 && counters.nacksAnsweredFromCache == 1 && counters.packetsIn == 61 && counters.packetsOut == 123, "\(counters)")

        let metrics = NodeMetrics.render()
        #expect(metrics.contains("meshnode_forwarder_packets_total{direction=\"to_participants\"}"))
        #expect(metrics.contains("meshnode_forwarder_nack_packets_total{answered=\"cache\"}"))
        #expect(metrics.contains("meshnode_forwarder_rooms_active"))

        // Alice hangs up (close_notify): the others get a BYE for her stream.
        alice.transport.close()
        try await waitUntil("bob gets alice's BYE") { bob.inbox.rtcp.withLock { $0.contains { if case .goodbye(let bye) = $0 { Set(bye.ssrcs) == [aliceAtBob.ssrc, rtxSSRC] } else { false } } } }
        await call.close()
        for participant in everyone { participant.reader.cancel(); participant.transport.close() }
    }

    @Test("a node forwards at most maxCalls room calls; the next is refused with limitReached until one ends")
    func callsPerNode() async throws {
        let node = ForwardingNode(maxCalls: 2)
        let first = try await node.call("rc-1")
        _ = try await node.call("rc-2")
        #expect(try await node.call("rc-1") === first, "the same room call is the same forwarded call")
        await #expect(throws: MediaError.self) { try await node.call("rc-3") }
        do {
            _ = try await node.call("rc-3")
        } catch {
            #expect(error.code == .limitReached)
        }
        await node.end("rc-1")
        _ = try await node.call("rc-3")
        #expect(await node.runningCalls == ["rc-2", "rc-3"])
        await node.shutdown()
        #expect(await node.runningCalls.isEmpty)
    }
}
