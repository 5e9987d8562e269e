import RTP
/// The receiver's side of transport-wide congestion control
/// (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1): it notes when each transport-wide
/// sequence number arrived and builds the RTCP feedback that reports them, typically every 50–100 ms.
public struct TransportFeedbackGenerator: Sendable {
    /// This receiver's SSRC and the media SSRC named in the feedback.
    public let senderSSRC: UInt32
    public let mediaSSRC: UInt32
    private var arrivals: [Int64: Duration] = [:]
    private var highest: Int64?
    private var nextToReport: Int64?
    private var feedbackCount: UInt8 = 0
    /// Packets that arrived after a feedback had reported them lost (the sender counts them lost).
    public private(set) var lateArrivals = 0

    /// The most packets one feedback packet describes.
    public static let maxPacketsPerFeedback = 1000

    /// Creates a generator.
    public init(senderSSRC: UInt32, mediaSSRC: UInt32) {
        self.senderSSRC = senderSSRC
        self.mediaSSRC = mediaSSRC
    }

    /// Notes that the packet with transport-wide sequence number `sequence` arrived at `arrival`.
    public mutating func packetArrived(sequence: UInt16, arrival: Duration) {
        let value: Int64
        if let highest {
            value = highest + Int64(Int16(bitPattern: sequence &- UInt16(truncatingIfNeeded: highest)))
            if value > highest { self.highest = value }
        } else {
            value = Int64(sequence) + (1 << 32)
            highest = value
        }
        if let next = nextToReport, value < next {
            // Reported already (as lost): a late packet that the next feedback cannot describe any more.
            lateArrivals += 1
            return
        }
        if nextToReport == nil || value < nextToReport! && arrivals.isEmpty { nextToReport = value }
        arrivals[value] = arrival
    }

    /// Feedback for everything received since the last one, or `nil` when nothing arrived.
    public mutating func makeFeedback() -> RTCPTransportFeedback? {
        guard let start = nextToReport, let highest, highest >= start, let first = arrivals.keys.filter({ $0 >= start }).min() else { return nil }
        let end = min(highest, first + Int64(Self.maxPacketsPerFeedback) - 1)
        // The reference time is the first arrival rounded down to 64 ms; deltas count 250 µs ticks from it.
        let firstArrival = arrivals[first] ?? .zero
        let referenceTicks = Int64(firstArrival.milliseconds / Double(RTCPTransportFeedback.referenceTickMilliseconds))
        var previousTicks = referenceTicks * Int64(RTCPTransportFeedback.referenceTickMilliseconds) * 4
        var statuses: [RTCPTransportFeedback.PacketStatus] = []
        for sequence in first...end {
            guard let arrival = arrivals[sequence] else {
                statuses.append(.notReceived)
                continue
            }
            let ticks = Int64((arrival.seconds * 4_000).rounded(.down))
            let delta = max(Int64(Int16.min), min(Int64(Int16.max), ticks - previousTicks))
            previousTicks += delta
            statuses.append(.received(delta: Int16(delta)))
        }
        for sequence in arrivals.keys where sequence <= end { arrivals[sequence] = nil }
        nextToReport = end + 1
        defer { feedbackCount &+= 1 }
        return RTCPTransportFeedback(
            senderSSRC: senderSSRC, mediaSSRC: mediaSSRC, baseSequenceNumber: UInt16(truncatingIfNeeded: first),
            referenceTime: Int32(truncatingIfNeeded: referenceTicks) & 0x7F_FFFF, feedbackPacketCount: feedbackCount, packets: statuses)
    }
}
