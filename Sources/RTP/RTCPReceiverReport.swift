import NIOCore

/// A receiver report, RTCP PT 201 (RFC 3550 §6.4.2).
public struct RTCPReceiverReport: Hashable, Sendable {
    /// The reporter's SSRC.
    public var ssrc: UInt32
    /// Reception reports, at most 31.
    public var reports: [RTCPReportBlock]

    /// Creates a receiver report.
    public init(ssrc: UInt32, reports: [RTCPReportBlock] = []) {
        self.ssrc = ssrc
        self.reports = reports
    }

    init(count: UInt8, parsing body: inout ByteBuffer) throws(RTPError) {
        guard let ssrc = body.readInteger(as: UInt32.self) else {
            throw RTPError(.truncated, "RTCP receiver report has no sender SSRC")
        }
        self.init(ssrc: ssrc, reports: try RTCPReportBlock.readBlocks(count: count, from: &body))
    }

    func writeBody(into buffer: inout ByteBuffer) throws(RTPError) -> UInt8 {
        guard reports.count <= 31 else {
            throw RTPError(.invalidArgument, "an RTCP receiver report carries at most 31 report blocks, got \(reports.count)")
        }
        buffer.writeInteger(ssrc)
        for report in reports { report.write(into: &buffer) }
        return UInt8(reports.count)
    }
}
