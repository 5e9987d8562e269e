import NIOCore

/// A reception report block (RFC 3550 §6.4.1), 24 bytes, carried in SR and RR packets.
public struct RTCPReportBlock: Hashable, Sendable {
    /// The source this block reports on.
    public var ssrc: UInt32
    /// Fraction of packets lost since the previous report, as a fixed-point number with the binary point at the left.
    public var fractionLost: UInt8
    /// Cumulative number of packets lost, a signed 24-bit value (duplicates can make it negative).
    public var cumulativeLost: Int32
    /// Extended highest sequence number received: cycles in the high 16 bits.
    public var extendedHighestSequenceNumber: UInt32
    /// Interarrival jitter in timestamp units (RFC 3550 §6.4.1, A.8).
    public var jitter: UInt32
    /// The middle 32 bits of the NTP timestamp of the last SR from this source, 0 if none.
    public var lastSenderReport: UInt32
    /// Delay since that SR in units of 1/65536 s.
    public var delaySinceLastSenderReport: UInt32

    /// Creates a report block.
    public init(
        ssrc: UInt32, fractionLost: UInt8, cumulativeLost: Int32, extendedHighestSequenceNumber: UInt32,
        jitter: UInt32, lastSenderReport: UInt32, delaySinceLastSenderReport: UInt32
    ) {
        self.ssrc = ssrc
        self.fractionLost = fractionLost
        self.cumulativeLost = cumulativeLost
        self.extendedHighestSequenceNumber = extendedHighestSequenceNumber
        self.jitter = jitter
        self.lastSenderReport = lastSenderReport
        self.delaySinceLastSenderReport = delaySinceLastSenderReport
    }

    static let size = 24

    static func readBlocks(count: UInt8, from body: inout ByteBuffer) throws(RTPError) -> [RTCPReportBlock] {
        var blocks: [RTCPReportBlock] = []
        for index in 0..<Int(count) {
            guard let (ssrc, lost, highest, jitter, lsr, dlsr) = body.readMultipleIntegers(
                as: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32).self)
            else {
                throw RTPError(.truncated, "RTCP report announces \(count) report blocks but ends in block \(index)")
            }
            // Sign-extend the 24-bit cumulative loss.
            let cumulative = Int32(bitPattern: (lost & 0x00FF_FFFF) << 8) >> 8
            blocks.append(RTCPReportBlock(
                ssrc: ssrc, fractionLost: UInt8(lost >> 24), cumulativeLost: cumulative,
                extendedHighestSequenceNumber: highest, jitter: jitter, lastSenderReport: lsr, delaySinceLastSenderReport: dlsr))
        }
        return blocks
    }

    func write(into buffer: inout ByteBuffer) {
        let clamped = min(max(cumulativeLost, -0x80_0000), 0x7F_FFFF)
        let lost = UInt32(fractionLost) << 24 | UInt32(bitPattern: clamped) & 0x00FF_FFFF
        buffer.writeMultipleIntegers(ssrc, lost, extendedHighestSequenceNumber, jitter, lastSenderReport, delaySinceLastSenderReport)
    }
}
