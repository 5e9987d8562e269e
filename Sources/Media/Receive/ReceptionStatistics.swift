import RTP
/// The receiver's RFC 3550 bookkeeping for one source: extended sequence numbers (§A.1), packets
/// expected and lost (§6.4.1, §A.3) and interarrival jitter (§6.4.1, §A.8), turned into report
/// blocks for RTCP receiver reports.
public struct ReceptionStatistics: Sendable {
    /// The RTP clock rate of the stream, for jitter in timestamp units.
    public let clockRate: Int
    /// The source reported on.
    public let ssrc: UInt32

    private var baseSequence: Int64?
    private var highestSequence: Int64 = 0
    /// Packets received, duplicates and retransmissions included (RFC 3550 §A.3 counts them too).
    public private(set) var received: Int64 = 0
    private var expectedPrior: Int64 = 0
    private var receivedPrior: Int64 = 0
    private var lastTransit: Double?
    /// Interarrival jitter in timestamp units, the running estimate of RFC 3550 §A.8.
    public private(set) var jitter: Double = 0
    private var lastSenderReport: (compactNTP: UInt32, arrival: Duration)?

    /// Creates empty statistics.
    public init(ssrc: UInt32, clockRate: Int) {
        self.ssrc = ssrc
        self.clockRate = clockRate
    }

    /// Records a packet that arrived at `arrival` (any epoch, as long as it stays the same).
    ///
    /// `countsForJitter` is false for retransmissions: their transit time says nothing about the
    /// network's jitter and would inflate it.
    public mutating func record(sequenceNumber: UInt16, timestamp: UInt32, arrival: Duration, countsForJitter: Bool = true) {
        received += 1
        if let base = baseSequence {
            let delta = Int64(Int16(bitPattern: sequenceNumber &- UInt16(truncatingIfNeeded: highestSequence)))
            let extended = highestSequence + delta
            if extended > highestSequence { highestSequence = extended }
            if extended < base { baseSequence = extended }
        } else {
            baseSequence = Int64(sequenceNumber)
            highestSequence = Int64(sequenceNumber)
        }
        guard countsForJitter else { return }
        // RFC 3550 §A.8: transit = arrival (in RTP units) - timestamp; J += (|D| - J) / 16.
        let arrivalUnits = arrival.seconds * Double(clockRate)
        let transit = arrivalUnits - Double(timestamp)
        if let lastTransit {
            var difference = abs(transit - lastTransit)
            // A timestamp that wrapped 32 bits shows as a difference near 2^32.
            if difference > Double(UInt32.max) / 2 { difference = abs(difference - Double(UInt32.max) - 1) }
            jitter += (difference - jitter) / 16
        }
        lastTransit = transit
    }

    /// Packets expected: extended highest minus base, plus one (RFC 3550 §A.3).
    public var expected: Int64 {
        guard let baseSequence else { return 0 }
        return highestSequence - baseSequence + 1
    }

    /// Cumulative packets lost (RFC 3550 §6.4.1): expected minus received, negative with duplicates.
    public var cumulativeLost: Int64 { expected - received }

    /// The extended highest sequence number received: cycles in the high 16 bits (RFC 3550 §6.4.1).
    public var extendedHighestSequenceNumber: UInt32 { UInt32(truncatingIfNeeded: highestSequence) }

    /// Jitter in seconds.
    public var jitterSeconds: Double { jitter / Double(clockRate) }

    /// Notes a sender report from this source that arrived at `arrival`, to echo it as LSR/DLSR
    /// (RFC 3550 §6.4.1) so that the sender can measure the round-trip time.
    public mutating func senderReportReceived(_ report: RTCPSenderReport, arrival: Duration) {
        lastSenderReport = (report.compactNTP, arrival)
    }

    /// A report block for an RTCP RR or SR (RFC 3550 §6.4.1), with the fraction lost since the previous
    /// call (§A.3), and LSR/DLSR for the last sender report when `now` is given.
    public mutating func makeReportBlock(now: Duration? = nil) -> RTCPReportBlock {
        var lastSenderReport: UInt32 = 0
        var delaySinceLastSenderReport: UInt32 = 0
        if let now, let report = self.lastSenderReport {
            lastSenderReport = report.compactNTP
            // DLSR in units of 1/65536 s.
            delaySinceLastSenderReport = UInt32(clamping: Int64(max(0, (now - report.arrival).seconds) * 65_536))
        }
        let expectedInterval = expected - expectedPrior
        let receivedInterval = received - receivedPrior
        expectedPrior = expected
        receivedPrior = received
        let lostInterval = expectedInterval - receivedInterval
        let fraction: UInt8 = (expectedInterval == 0 || lostInterval <= 0) ? 0 : UInt8(min(255, (lostInterval << 8) / expectedInterval))
        return RTCPReportBlock(
            ssrc: ssrc, fractionLost: fraction, cumulativeLost: Int32(clamping: cumulativeLost),
            extendedHighestSequenceNumber: extendedHighestSequenceNumber, jitter: UInt32(clamping: Int64(jitter.rounded())),
            lastSenderReport: lastSenderReport, delaySinceLastSenderReport: delaySinceLastSenderReport)
    }
}
