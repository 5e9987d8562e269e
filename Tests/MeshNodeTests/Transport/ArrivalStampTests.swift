import DTLSSRTP
import ICE
import MeshNode
import NIOCore
import RTP
import Testing
import TestSupport

/// A received packet carries the time it came off the socket (libnice's receive callback) through
/// the ICE agent's queue, the path's and the DTLS-SRTP transport's to whoever reads it: a
/// receive-side estimate (transport-cc feedback, draft-holmer-rmcat-transport-wide-cc-extensions-01
/// §3.1) that stamped packets when it read them would report a slow reader's backlog as a queue on
/// the path (docs/rooms.md "Arrival times are taken at the socket").
@Suite("Arrival times are stamped at the socket, not by the reader", .serialized, .timeLimit(.minutes(2)))
struct ArrivalStampTests {
    @Test("a reader that sleeps 600 ms before reading still sees the packets' arrivals spaced as they were sent, over real ICE agents")
    func slowReaderSeesSocketTimes() async throws {
        let pair = try await TransportPair.make()
        try await pair.start()
        _ = try await withTimeout("A connected") { try await pair.a.transport.connected() }
        _ = try await withTimeout("B connected") { try await pair.b.transport.connected() }
        // A first packet through, so that the path is warm and B's reader is waiting.
        try await deliverRTP("warm", ssrc: 0x5151, from: pair.a, to: pair.b)
        let before = pair.b.snapshot.rtp.count
        let hold: Duration = .milliseconds(600)
        pair.b.holdReading(until: .now + hold)

        var sent: [ContinuousClock.Instant] = []
        let count = 15
        for index in 0..<count {
            if index > 0 { try await Task.sleep(for: .milliseconds(20)) }
            sent.append(.now)
            try pair.a.transport.sendRTP(try rtpPacket(sequence: UInt16(1000 + index), ssrc: 0x5151, payload: "p\(index)"))
        }
        try await pair.b.wait(for: "\(count) packets read") { $0.rtp.count >= before + count }
        let times = Array(pair.b.snapshot.rtpTimes[before..<(before + count)])
        await pair.shutdown()

        // Each packet's stamp against its send, relative to the first: within a few ms (the
        // sender and the GLib thread share two loaded cores).
        let offsets = (0..<count).map { ((times[$0].arrival - times[0].arrival) - (sent[$0] - sent[0])) / .milliseconds(1) }
        let readOffsets = (0..<count).map { ((times[$0].read - times[0].read) - (sent[$0] - sent[0])) / .milliseconds(1) }
        print("arrival stamp minus send, ms: \(offsets.map { Int($0.rounded()) }); the reader's read minus send, ms: \(readOffsets.map { Int($0.rounded()) })")
        let worst = offsets.map(abs).max() ?? 0
        #expect(worst <= 10, "the stamps follow the sends: \(offsets)")
        // The first packet's stamp is from before the reader's sleep, not from when it woke.
        #expect(times[0].read - times[0].arrival >= hold - .milliseconds(100), "the reader did sleep: \(times[0].read - times[0].arrival)")
        #expect(times[0].arrival - sent[0] < .milliseconds(50), "stamped at the socket: \(times[0].arrival - sent[0]) after the send")
        // What stamping at the read gave: the packets bunched (the test's own check that the
        // delay it defends against was there).
        let readSpan = times[count - 1].read - times[0].read, sentSpan = sent[count - 1] - sent[0]
        #expect(readSpan < sentSpan - .milliseconds(100), "read times bunch up: \(readSpan) against \(sentSpan) sent")
    }
}
