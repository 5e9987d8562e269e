import NIOCore

/// A sender report, RTCP PT 200 (RFC 3550 §6.4.1).
public struct RTCPSenderReport: Hashable, Sendable {
    /// The sender's SSRC.
    public var ssrc: UInt32
    /// The 64-bit NTP wallclock time when the report was sent (RFC 3550 §4).
    public var ntpTimestamp: UInt64
    /// The RTP timestamp that corresponds to ``ntpTimestamp``.
    public var rtpTimestamp: UInt32
    /// Packets sent since the start of transmission.
    public var packetCount: UInt32
    /// Payload octets sent since the start of transmission.
    public var octetCount: UInt32
    /// Reception reports, at most 31.
    public var reports: [RTCPReportBlock]

    /// Creates a sender report.
    public init(ssrc: UInt32, ntpTimestamp: UInt64, rtpTimestamp: UInt32, packetCount: UInt32, octetCount: UInt32, reports: [RTCPReportBlock] = []) {
        self.ssrc = ssrc
        self.ntpTimestamp = ntpTimestamp
        self.rtpTimestamp = rtpTimestamp
        self.packetCount = packetCount
        self.octetCount = octetCount
        self.reports = reports
    }

    /// The middle 32 bits of the NTP timestamp, which receivers echo as LSR (RFC 3550 §6.4.1).
    public var compactNTP: UInt32 { UInt32(truncatingIfNeeded: ntpTimestamp >> 16) }

    init(count: UInt8, parsing body: inout ByteBuffer) throws(RTPError) {
        guard let (ssrc, ntp, rtp, packets, octets) = body.readMultipleIntegers(as: (UInt32, UInt64, UInt32, UInt32, UInt32).self) else {
            throw RTPError(.truncated, "RTCP sender report body of \(body.readableBytes) bytes is shorter than 24")
        }
        self.init(ssrc: ssrc, ntpTimestamp: ntp, rtpTimestamp: rtp, packetCount: packets, octetCount: octets,
                  reports: try RTCPReportBlock.readBlocks(count: count, from: &body))
        // Any remaining bytes are profile-specific extensions (RFC 3550 §6.4.1), ignored.
    }

    func writeBody(into buffer: inout ByteBuffer) throws(RTPError) -> UInt8 {
        guard reports.count <= 31 else {
            throw RTPError(.invalidArgument, "an RTCP sender report carries at most 31 report blocks, got \(reports.count)")
        }
        buffer.writeMultipleIntegers(ssrc, ntpTimestamp, rtpTimestamp, packetCount, octetCount)
        for report in reports { report.write(into: &buffer) }
        return UInt8(reports.count)
    }
}
