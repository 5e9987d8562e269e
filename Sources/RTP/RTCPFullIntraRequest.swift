import NIOCore

/// A full intra request, RTCP PT 206 FMT 4 (RFC 5104 §4.3.1).
public struct RTCPFullIntraRequest: Hashable, Sendable {
    static let format: UInt8 = 4

    /// One FCI entry: the source asked for a decoder refresh and a command sequence number.
    public struct Entry: Hashable, Sendable {
        /// The media sender that should send a decoder refresh point.
        public var ssrc: UInt32
        /// Incremented by one per new request, so retransmitted requests can be told apart (RFC 5104 §4.3.1.1).
        public var sequenceNumber: UInt8
        public init(ssrc: UInt32, sequenceNumber: UInt8) {
            self.ssrc = ssrc
            self.sequenceNumber = sequenceNumber
        }
    }

    /// The SSRC of the packet's sender.
    public var senderSSRC: UInt32
    /// The requests, one per media sender.
    public var entries: [Entry]

    /// Creates a FIR.
    public init(senderSSRC: UInt32, entries: [Entry]) {
        self.senderSSRC = senderSSRC
        self.entries = entries
    }

    init(parsing body: inout ByteBuffer) throws(RTPError) {
        // RFC 5104 §4.3.1.2: the media source SSRC field is unused and set to 0.
        guard let (sender, _) = body.readMultipleIntegers(as: (UInt32, UInt32).self) else {
            throw RTPError(.truncated, "RTCP FIR is shorter than its 8-byte common feedback header")
        }
        guard body.readableBytes > 0, body.readableBytes % 8 == 0 else {
            throw RTPError(.malformed, "RTCP FIR needs one or more 8-byte FCI entries, has \(body.readableBytes) bytes")
        }
        var entries: [Entry] = []
        while let (ssrc, sequence, _, _) = body.readMultipleIntegers(as: (UInt32, UInt8, UInt8, UInt16).self) {
            entries.append(Entry(ssrc: ssrc, sequenceNumber: sequence))
        }
        self.init(senderSSRC: sender, entries: entries)
    }

    func writeBody(into buffer: inout ByteBuffer) {
        buffer.writeMultipleIntegers(senderSSRC, UInt32(0))
        for entry in entries {
            buffer.writeMultipleIntegers(entry.ssrc, entry.sequenceNumber, UInt8(0), UInt16(0))
        }
    }
}
