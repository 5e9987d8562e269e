import DTLSSRTP
import Media
@testable import MeshNode
import NIOCore
import RTP
import Synchronization
import Testing
import TestSupport

/// The forwarder's transport-cc feedback on an uplink reports when each packet came off the
/// socket (the stamp its transport carries), not when the forwarder got to it: held 300 ms in
/// the queues in front of it and then read in a burst, packets sent 20 ms apart are still
/// reported 20 ms apart (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1; docs/rooms.md
/// "Arrival times are taken at the socket"). Stamped at the read, as before, they were reported
/// all at once, and Chromium's delay-based estimate read the burst as a queue on its path.
@Suite("Forwarded call: the uplink's transport-cc feedback carries the socket's arrival times", .serialized, .timeLimit(.minutes(2)))
struct ForwardedArrivalStampTests {
    static let transportSequenceID: UInt8 = 3

    static func packet(_ index: Int, ssrc: UInt32) throws -> ByteBuffer {
        var sequence = ByteBuffer()
        sequence.writeInteger(UInt16(index))
        return try RTPPacket(payloadType: 96, sequenceNumber: UInt16(index), timestamp: UInt32(index) * 3000, ssrc: ssrc,
                             headerExtension: .compact([RTPHeaderExtensionElement(id: transportSequenceID, data: sequence)]),
                             payload: ByteBuffer(bytes: [0x10, 0, 0, 0] + Array(repeating: UInt8(index & 0xFF), count: 300))).serialized()
    }

    /// The arrival time of each transport-wide sequence number the feedback reported, in µs
    /// since the forwarder's epoch (§3.1: reference time in 64 ms ticks, then 250 µs deltas).
    static func reportedArrivals(_ rtcp: [RTCPPacket]) -> [UInt16: Int] {
        var arrivals: [UInt16: Int] = [:]
        for case .transportFeedback(let feedback) in rtcp {
            var time = Int(feedback.referenceTime) * RTCPTransportFeedback.referenceTickMilliseconds * 1000
            for (offset, status) in feedback.packets.enumerated() {
                guard case .received(let delta) = status else { continue }
                time += Int(delta) * RTCPTransportFeedback.deltaTickMicroseconds
                arrivals[feedback.baseSequenceNumber &+ UInt16(offset)] = time
            }
        }
        return arrivals
    }

    @Test("packets sent 20 ms apart, held 300 ms before the forwarder and read in a burst: the feedback reports them 20 ms apart")
    func heldUplinkReportsSendSpacing() async throws {
        // Before any forwarder meter is made: its counters are made once, with the backend there is then.
        NodeMetrics.bootstrap()
        let call = ForwardedCall(id: "rc-arrival")
        let ssrc: UInt32 = 0xA11CE
        let aliceCertificate = try DTLSCertificate(commonName: "alice")
        let forwarderCertificate = try DTLSCertificate(commonName: "forwarder")
        let (uplink, forwarderEnd) = ForwarderLinkEnd.pair()
        let alice = try DTLSSRTPTransport(path: uplink, events: uplink.events, configuration: .init(
            certificate: aliceCertificate, role: .client, remoteFingerprint: forwarderCertificate.fingerprint))
        let server = try DTLSSRTPTransport(path: forwarderEnd, events: forwarderEnd.events, configuration: .init(
            certificate: forwarderCertificate, role: .server, remoteFingerprint: aliceCertificate.fingerprint))
        alice.start()
        server.start()
        try await call.add("alice", transport: server, sources: [ForwardedSource(kind: .video, ssrc: ssrc, payloadType: 96)],
                           extensions: ForwardingExtensionIDs(transportWideCC: Self.transportSequenceID))
        _ = try await withTimeout("alice DTLS") { try await alice.connected() }
        let feedback = Mutex<[RTCPPacket]>([])
        let reader = Task {
            for await event in alice.events {
                if case .rtcp(let bytes, _) = event, let packets = try? RTCPPacket.parseCompound(bytes) { feedback.withLock { $0 += packets } }
            }
        }

        // The queues in front of the forwarder hold what alice sends for 300 ms after her last
        // packet, then hand it over at once, each datagram stamped when it was sent.
        let count = 15
        var sent: [ContinuousClock.Instant] = []
        uplink.holdSent()
        for index in 1...count {
            if index > 1 { try await Task.sleep(for: .milliseconds(20)) }
            sent.append(.now)
            try alice.sendRTP(try Self.packet(index, ssrc: ssrc))
        }
        try await Task.sleep(for: .milliseconds(300))
        uplink.releaseHeld()
        // A feedback covers what arrived since the last one when a packet finds it due: later
        // packets, 60 ms apart, bring the rest of the held ones into one.
        var next = count + 1
        let arrivals = try await waitFor("feedback on packets 1...\(count)", interval: .milliseconds(60)) { () -> [UInt16: Int]? in
            let arrivals = Self.reportedArrivals(feedback.withLock { $0 })
            if (1...count).allSatisfy({ arrivals[UInt16($0)] != nil }) { return arrivals }
            try alice.sendRTP(try Self.packet(next, ssrc: ssrc))
            next += 1
            return nil
        }
        reader.cancel()
        await call.close()
        alice.close()

        let first = try #require(arrivals[1])
        // Reported spacing against sent spacing, in ms (250 µs ticks, and the send's stamp is
        // taken a few µs after `sent`, a few ms on a loaded machine: 3.04 ms was seen at load 5).
        // Stamped at the read instead, the offsets run to −290 ms.
        let offsets = (1...count).map { index -> Double in
            Double(arrivals[UInt16(index)]! - first) / 1000 - (sent[index - 1] - sent[0]) / .milliseconds(1)
        }
        print("reported arrival minus send, relative to the first packet, ms: \(offsets.map { ($0 * 10).rounded() / 10 })")
        #expect(offsets.allSatisfy { abs($0) <= 6 }, "the feedback reports the packets as they were sent: \(offsets)")
    }
}
