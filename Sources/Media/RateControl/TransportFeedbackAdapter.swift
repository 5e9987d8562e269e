import NIOCore
import RTP
/// The sender's side of transport-wide congestion control
/// (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3): it numbers outgoing packets with the
/// transport-wide sequence number, remembers when each was sent and how big it was, and turns the
/// receiver's feedback into ``PacketFeedback`` for the bandwidth estimators.
public struct TransportFeedbackAdapter: Sendable {
    private struct Sent: Sendable {
        var time: Duration
        var size: Int
        /// Reported received: a later feedback about it (a duplicate) adds nothing.
        var acknowledged = false
    }

    /// What was sent, oldest first: `sent[i]` is sequence `firstSequence + i`. Numbers are
    /// consecutive, so a ring indexed by them costs no hashing per packet (a forwarder numbers
    /// every copy to every receiver), and records leave from the front as they age.
    private var sent = CircularBuffer<Sent>(initialCapacity: 256)
    private var firstSequence: Int64 = 1
    private var nextSequence: Int64 = 1
    /// How long a sent packet's record is kept waiting for feedback.
    public var maxAge: Duration = .seconds(5)
    /// The most records kept whatever their age: half the 16-bit number space, past which a
    /// feedback's base number could not be told from an older one anyway.
    public static let maxRecords = 32_768

    /// Creates an adapter.
    public init() {}

    /// Numbers a packet of `size` bytes sent at `now`; put the result in the packet's
    /// transport-wide sequence number extension (``RTPHeaderExtensionElement/transportSequenceNumber(id:_:)``).
    public mutating func packetSent(size: Int, now: Duration) -> UInt16 {
        let sequence = nextSequence
        nextSequence += 1
        sent.append(Sent(time: now, size: size))
        while let oldest = sent.first, sent.count > Self.maxRecords || now - oldest.time > maxAge {
            sent.removeFirst()
            firstSequence += 1
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
            let index = sequence - firstSequence
            guard index >= 0, index < Int64(sent.count) else { continue }
            let position = sent.index(sent.startIndex, offsetBy: Int(index))
            let record = sent[position]
            guard !record.acknowledged else { continue }
            if arrivalTime != nil { sent[position].acknowledged = true }
            results.append(PacketFeedback(sequenceNumber: sequence, sendTime: record.time, size: record.size, arrivalTime: arrivalTime))
        }
        return results
    }
}
