import NIOCore
import Testing
@testable import Media
import RTP

@Suite("Rate control: GCC delay-based, loss-based and REMB over a simulated bottleneck")
struct RateControlTests {
    /// A sender paced at the estimator's target through a bottleneck whose capacity follows
    /// `capacity(t)`; the receiver sends transport-cc feedback every 50 ms and a receiver report
    /// every second. Returns the target sampled every 100 ms.
    private struct Run {
        var targets: [(time: Double, bitrate: Double)] = []
        var delivered: [(time: Double, bits: Int)] = []
        var queueDelays: [(time: Double, milliseconds: Double)] = []
        var drops = 0

        func meanTarget(_ range: ClosedRange<Double>) -> Double {
            let samples = targets.filter { range.contains($0.time) }.map(\.bitrate)
            return samples.reduce(0, +) / Double(max(samples.count, 1))
        }

        func throughput(_ range: ClosedRange<Double>) -> Double {
            Double(delivered.filter { range.contains($0.time) }.reduce(0) { $0 + $1.bits }) / (range.upperBound - range.lowerBound)
        }

        func meanQueueDelay(_ range: ClosedRange<Double>) -> Double {
            let samples = queueDelays.filter { range.contains($0.time) }.map(\.milliseconds)
            return samples.reduce(0, +) / Double(max(samples.count, 1))
        }
    }

    private struct Sent: Sendable {
        var rtpSequence: UInt16
        var transportSequence: UInt16
        var sendTime: Duration
    }

    private func simulate(seconds: Int, transportCC: Bool, lossProbability: Double = 0, remb: Double? = nil,
                          capacity: (Double) -> Double) -> Run {
        var estimator = SendSideBandwidthEstimator(configuration: .init(startBitrate: 300_000, minimumBitrate: 50_000, maximumBitrate: 4_000_000))
        estimator.roundTripTime = .milliseconds(60)
        var forward = SimulatedLink<Sent>(configuration: .init(capacityBitsPerSecond: capacity(0), queueLimitBytes: 120_000,
                                                               delay: .milliseconds(30), lossProbability: lossProbability), seed: 9)
        var backward = SimulatedLink<RTCPPacket>(configuration: .init(delay: .milliseconds(30)), seed: 10)
        var generator = TransportFeedbackGenerator(senderSSRC: 2, mediaSSRC: 1)
        var reception = ReceptionStatistics(ssrc: 1, clockRate: 90_000)
        var run = Run()
        let packetSize = 1_200
        var rtpSequence: UInt16 = 0
        var budget = 0.0
        var now = Duration.zero
        let step = Duration.milliseconds(1)
        var nextFeedback = Duration.milliseconds(50), nextReport = Duration.seconds(1), nextSample = Duration.zero
        if let remb { backward.send(.receiverEstimatedMaxBitrate(.init(senderSSRC: 2, bitrate: UInt64(remb), ssrcs: [1])), size: 40, now: now) }
        while now < .seconds(seconds) {
            let t = now.seconds
            forward.configuration.capacityBitsPerSecond = capacity(t)
            // Pacer: send at the target rate in whole packets.
            budget += estimator.targetBitrate * step.seconds
            while budget >= Double(packetSize * 8) {
                budget -= Double(packetSize * 8)
                let transportSequence = estimator.packetSent(size: packetSize, now: now)
                forward.send(Sent(rtpSequence: rtpSequence, transportSequence: transportSequence, sendTime: now), size: packetSize, now: now)
                rtpSequence &+= 1
            }
            for (packet, arrival) in forward.receive(now: now) {
                generator.packetArrived(sequence: packet.transportSequence, arrival: arrival)
                reception.record(sequenceNumber: packet.rtpSequence, timestamp: UInt32(truncatingIfNeeded: Int64(packet.sendTime.seconds * 90_000)), arrival: arrival)
                run.delivered.append((arrival.seconds, packetSize * 8))
                run.queueDelays.append((arrival.seconds, (arrival - packet.sendTime - .milliseconds(30)).milliseconds))
            }
            if now >= nextFeedback {
                if transportCC, let feedback = generator.makeFeedback() {
                    backward.send(.transportFeedback(feedback), size: 100, now: now)
                }
                nextFeedback += .milliseconds(50)
            }
            if now >= nextReport {
                backward.send(.receiverReport(.init(ssrc: 2, reports: [reception.makeReportBlock()])), size: 60, now: now)
                nextReport += .seconds(1)
            }
            for (packet, _) in backward.receive(now: now) {
                // Through the wire format, as a real sender would get it.
                guard let parsed = try? RTCPPacket.parseCompound(RTCPPacket.serializeCompound([packet])) else { continue }
                for rtcp in parsed { estimator.handle(rtcp, now: now) }
            }
            if now >= nextSample {
                run.targets.append((t, estimator.targetBitrate))
                nextSample += .milliseconds(100)
            }
            now += step
        }
        run.drops = forward.counters.droppedByQueue
        return run
    }

    @Test("delay-based (transport-cc): converges below a 1 Mb/s bottleneck, then follows a rise to 2.5 Mb/s")
    func delayBasedConvergence() {
        let run = simulate(seconds: 60, transportCC: true) { $0 < 30 ? 1_000_000 : 2_500_000 }
        let settled = run.meanTarget(15...30)
        let settledThroughput = run.throughput(15...30)
        let raised = run.meanTarget(50...60)
        let firstAbove1500 = run.targets.first { $0.time > 30 && $0.bitrate > 1_500_000 }?.time
        print("GCC delay-based: 1 Mb/s link → target \(Int(settled / 1000)) kb/s, throughput \(Int(settledThroughput / 1000)) kb/s, queue delay \(String(format: "%.0f", run.meanQueueDelay(15...30))) ms, drops \(run.drops); 2.5 Mb/s link → target \(Int(raised / 1000)) kb/s (above 1.5 Mb/s after \(firstAbove1500.map { String(format: "%.1f", $0 - 30) } ?? "never") s), queue delay \(String(format: "%.0f", run.meanQueueDelay(50...60))) ms")
        #expect(settled < 1_000_000 && settled > 600_000)
        #expect(settledThroughput > 600_000)
        #expect(run.meanQueueDelay(15...30) < 150, "the queue stays short: delay-based control backs off before it fills")
        #expect(raised > 1_600_000 && raised < 2_500_000)
    }

    @Test("loss-based only (receiver reports): backs off under 15% loss, grows on a clean link")
    func lossBased() {
        let lossy = simulate(seconds: 12, transportCC: false, lossProbability: 0.15) { _ in 10_000_000 }
        let clean = simulate(seconds: 12, transportCC: false) { _ in 10_000_000 }
        print("loss-based: 15% loss → \(Int(lossy.meanTarget(10...12) / 1000)) kb/s, clean → \(Int(clean.meanTarget(10...12) / 1000)) kb/s (start 300 kb/s)")
        #expect(lossy.meanTarget(10...12) < 210_000, "at least 30 % below the 300 kb/s start")
        #expect(clean.meanTarget(10...12) > 500_000)
    }

    @Test("loss-based without transport-cc still settles near a drop-tail bottleneck; REMB caps the target")
    func lossBasedBottleneckAndREMB() {
        let run = simulate(seconds: 40, transportCC: false) { _ in 1_000_000 }
        let settled = run.meanTarget(25...40)
        print("loss-based on a 1 Mb/s drop-tail link: target \(Int(settled / 1000)) kb/s, throughput \(Int(run.throughput(25...40) / 1000)) kb/s")
        #expect(settled < 1_600_000 && settled > 400_000)
        let capped = simulate(seconds: 10, transportCC: true, remb: 400_000) { _ in 5_000_000 }
        #expect(capped.targets.allSatisfy { $0.bitrate <= 400_000 || $0.time < 0.1 })
    }

    @Test("transport-cc feedback built by the receiver gives the sender its send and arrival times back")
    func feedbackRoundTrip() throws {
        var adapter = TransportFeedbackAdapter()
        var generator = TransportFeedbackGenerator(senderSSRC: 2, mediaSSRC: 1)
        var sequences: [UInt16] = []
        for index in 0..<10 { sequences.append(adapter.packetSent(size: 1000 + index, now: .milliseconds(index * 10))) }
        for (index, sequence) in sequences.enumerated() where index != 4 {
            generator.packetArrived(sequence: sequence, arrival: .milliseconds(1_000 + index * 12))
        }
        let made = generator.makeFeedback()
        let feedback = try #require(made)
        let parsed = try RTCPPacket.parseCompound(RTCPPacket.serializeCompound([.transportFeedback(feedback)]))
        guard case .transportFeedback(let received) = parsed.first else { throw MediaError(.invalidArgument, "feedback did not survive") }
        let results = adapter.results(of: received)
        #expect(results.count == 10)
        #expect(results[4].arrivalTime == nil)
        #expect(results[9].size == 1009 && results[9].sendTime == .milliseconds(90))
        let spacing = (results[9].arrivalTime! - results[0].arrivalTime!).milliseconds
        #expect(abs(spacing - 108) < 0.5, "arrival spacing survives at 250 µs resolution, got \(spacing) ms")
        #expect(generator.makeFeedback() == nil, "nothing new")
    }

    @Test("the sender's records: a packet reported received counts once, one reported lost can still arrive; records past maxAge are gone, without feedback too")
    func adapterRecords() {
        var adapter = TransportFeedbackAdapter()
        // 6 s at 1,000 packets a second and no feedback at all (a receiver that sends none).
        for index in 0..<6_000 { _ = adapter.packetSent(size: 100 + index % 7, now: .milliseconds(index)) }
        func feedback(base: Int, _ packets: [RTCPTransportFeedback.PacketStatus]) -> RTCPTransportFeedback {
            RTCPTransportFeedback(senderSSRC: 2, mediaSSRC: 1, baseSequenceNumber: UInt16(truncatingIfNeeded: base),
                                  referenceTime: 100, feedbackPacketCount: 0, packets: packets)
        }
        // Sequence 500 was sent at 499 ms, more than 5 s before the last: forgotten.
        #expect(adapter.results(of: feedback(base: 500, [.received(delta: 4)])).isEmpty)
        // 5,990 (sent at 5,989 ms) reported lost, 5,991 received; then both received.
        let first = adapter.results(of: feedback(base: 5_990, [.notReceived, .received(delta: 4)]))
        #expect(first.map(\.sequenceNumber) == [5_990, 5_991] && first[0].arrivalTime == nil && first[1].size == 100 + 5_990 % 7)
        #expect(first[1].sendTime == .milliseconds(5_990))
        let second = adapter.results(of: feedback(base: 5_990, [.received(delta: 4), .received(delta: 4)]))
        #expect(second.map(\.sequenceNumber) == [5_990], "5,991 was already reported received")
        #expect(second.first?.arrivalTime != nil)
    }
}
