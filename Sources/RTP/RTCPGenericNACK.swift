import NIOCore

/// A generic NACK, RTCP PT 205 FMT 1 (RFC 4585 §6.2.1): sequence numbers the receiver is missing.
public struct RTCPGenericNACK: Hashable, Sendable {
    static let format: UInt8 = 1

    /// The SSRC of the packet's sender.
    public var senderSSRC: UInt32
    /// The SSRC of the media source whose packets are missing.
    public var mediaSSRC: UInt32
    /// The missing sequence numbers. Parsing yields them unique and in ascending order from the first
    /// PID; serializing accepts any order and duplicates.
    public var lostSequenceNumbers: [UInt16]

    /// Creates a NACK for `lostSequenceNumbers`.
    public init(senderSSRC: UInt32, mediaSSRC: UInt32, lostSequenceNumbers: [UInt16]) {
        self.senderSSRC = senderSSRC
        self.mediaSSRC = mediaSSRC
        self.lostSequenceNumbers = lostSequenceNumbers
    }

    init(parsing body: inout ByteBuffer) throws(RTPError) {
        guard let (sender, media) = body.readMultipleIntegers(as: (UInt32, UInt32).self) else {
            throw RTPError(.truncated, "RTCP NACK is shorter than its 8-byte common feedback header")
        }
        guard body.readableBytes > 0, body.readableBytes % 4 == 0 else {
            throw RTPError(.malformed, "RTCP NACK needs one or more 4-byte FCI entries, has \(body.readableBytes) bytes")
        }
        var lost: [UInt16] = []
        while let (pid, blp) = body.readMultipleIntegers(as: (UInt16, UInt16).self) {
            lost.append(pid)
            // RFC 4585 §6.2.1: bit i of BLP reports the loss of PID + i + 1.
            for bit in 0..<16 where blp & (1 << bit) != 0 {
                lost.append(pid &+ UInt16(bit + 1))
            }
        }
        self.init(senderSSRC: sender, mediaSSRC: media, lostSequenceNumbers: Self.ordered(lost))
    }

    /// Unique sequence numbers in ascending order, counted from the first one so that the 16-bit wrap
    /// keeps its meaning (65535 comes before 0).
    static func ordered(_ sequences: [UInt16]) -> [UInt16] {
        guard let first = sequences.first else { return [] }
        return Set(sequences).sorted { ($0 &- first) < ($1 &- first) }
    }

    /// The FCI entries: each a PID and a bitmask of the following 16 sequence numbers.
    var entries: [(pid: UInt16, blp: UInt16)] {
        var entries: [(pid: UInt16, blp: UInt16)] = []
        for sequence in Self.ordered(lostSequenceNumbers) {
            if let last = entries.indices.last {
                let distance = sequence &- entries[last].pid
                if distance == 0 { continue }
                if distance <= 16 {
                    entries[last].blp |= 1 << (distance - 1)
                    continue
                }
            }
            entries.append((sequence, 0))
        }
        return entries
    }

    func writeBody(into buffer: inout ByteBuffer) {
        buffer.writeMultipleIntegers(senderSSRC, mediaSSRC)
        for entry in entries { buffer.writeMultipleIntegers(entry.pid, entry.blp) }
    }
}
