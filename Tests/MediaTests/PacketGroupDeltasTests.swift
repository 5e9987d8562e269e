import Testing
@testable import Media

/// Packet groups of delay-based congestion control (draft-ietf-rmcat-gcc-02 §5.2).
@Suite("PacketGroupDeltas: a burst of arrivals after a receiver stall is one group; a growing queue still shows")
struct PacketGroupDeltasTests {
    /// The change in one-way delay of each group pair, in ms.
    static func variations(_ packets: [(send: Double, arrival: Double)]) -> [Double] {
        var groups = PacketGroupDeltas()
        return packets.compactMap { packet in
            groups.add(sendTime: .microseconds(Int64(packet.send * 1000)), arrivalTime: .microseconds(Int64(packet.arrival * 1000)))
        }.map { ($0.arrivalDelta - $0.sendDelta).milliseconds }
    }

    @Test("a receiver held up for 80 ms hands over the queued packets at once: no delay variation beyond 1 ms (§5.2 burst rule)")
    func receiverStall() {
        // One packet every 10 ms, 20 ms on the way; the ones sent 100–180 ms are read at 200 ms, 0.1 ms apart.
        let packets = (0..<40).map { index -> (send: Double, arrival: Double) in
            let send = Double(index) * 10
            return (send, (100...180).contains(send) ? 200 + (send - 100) / 100 : send + 20)
        }
        let deltas = Self.variations(packets)
        #expect(!deltas.isEmpty)
        #expect(deltas.allSatisfy { abs($0) <= 1.0 }, "\(deltas)")
    }

    @Test("a queue that grows by 2 ms per packet is not a burst: every delta shows it")
    func growingQueue() {
        let packets = (0..<20).map { index in (send: Double(index) * 10, arrival: Double(index) * 12 + 20) }
        let deltas = Self.variations(packets)
        #expect(deltas.count >= 15 && deltas.allSatisfy { abs($0 - 2) < 0.01 }, "\(deltas)")
    }

    @Test("a burst extends one group for at most 100 ms of arrivals")
    func boundedBurst() {
        // 60 packets sent 10 ms apart, read 4 ms apart after a long stall: groups of at most 100 ms of arrivals, not one of 240 ms.
        let packets = [(send: 0.0, arrival: 20.0)] + (1..<61).map { index in (send: Double(index) * 10, arrival: 400 + Double(index) * 4) }
        #expect(Self.variations(packets).count >= 2)
    }
}
