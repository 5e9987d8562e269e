import RTP
/// The sender's side of transport-wide congestion control
/// (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3): it numbers outgoing packets with the
/// transport-wide sequence number, remembers when each was sent and how big it was, and turns the
/// receiver's feedback into ``PacketFeedback`` for the bandwidth estimators.
public struct TransportFeedbackAdapter: Sendable {
    private struct Sent: Sendable {
        var time: Duration
        var size: Int
    }

    private var sent: [Int64: Sent] = [:]
    private var nextSequence: Int64 = 1
    private var lastFeedbackSequence: Int64?
    /// How long a sent packet's record is kept waiting for feedback.
    public var maxAge: Duration = .seconds(5)

    /// Creates an adapter.
    public init() {}

    /// Numbers a packet of `size` bytes sent at `now`; put the result in the packet's
    /// transport-wide sequence number extension (``RTPHeaderExtensionElement/transportSequenceNumber(id:_:)``).
    public mutating func packetSent(size: Int, now: Duration) -> UInt16 {
        let sequence = nextSequence
        nextSequence += 1
        sent[sequence] = Sent(time: now, size: size)
        if sequence % 256 == 0 {
            sent = sent.filter { now - $0.value.time <= maxAge }
        }
        return UInt16(truncatingIfNeeded: sequence)
    }

    /// The results a feedback packet reports, in sequence order. Packets the sender has no record of
    /// (too old, or never sent) are skipped.
    public mutating func results(of feedback: RTCPTransportFeedback) -> [PacketFeedback] {
        // Unwrap the 16-bit base against what was sent.
        let newest = nextSequence - 1
        let base = newest + Int64(Int16(bitPattern: feedback.baseSequenceNumber &- UInt16(truncatingIfNeeded: newest)))
        var arrival = Duration.milliseconds(Int64(feedback.referenceTime) * Int64(RTCPTransportFeedback.referenceTickMilliseconds))
        var results: [PacketFeedback] = []
        results.reserveCapacity(feedback.packets.count)
        for (offset, status) in feedback.packets.enumerated() {
            let sequence = base + Int64(offset)
            var arrivalTime: Duration?
            if case .received(let delta) = status {
                arrival += .microseconds(Int64(delta) * Int64(RTCPTransportFeedback.deltaTickMicroseconds))
                arrivalTime = arrival
            }
            guard let record = sent[sequence] else { continue }
            if arrivalTime != nil { sent[sequence] = nil }
            results.append(PacketFeedback(sequenceNumber: sequence, sendTime: record.time, size: record.size, arrivalTime: arrivalTime))
        }
        return results
    }
}
