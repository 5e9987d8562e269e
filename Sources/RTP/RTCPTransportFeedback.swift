import NIOCore

/// Transport-wide congestion control feedback, RTCP PT 205 FMT 15
/// (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1): for a range of transport-wide sequence
/// numbers, whether each packet arrived and its arrival time relative to the previous one.
public struct RTCPTransportFeedback: Hashable, Sendable {
    static let format: UInt8 = 15

    /// The receive status of one packet.
    public enum PacketStatus: Hashable, Sendable {
        /// The packet was not received.
        case notReceived
        /// The packet arrived `delta` ticks of 250 µs after the previous received packet (the first:
        /// after the reference time). 0–255 is a "small" delta on the wire; anything else "large".
        case received(delta: Int16)
    }

    /// The SSRC of the packet's sender.
    public var senderSSRC: UInt32
    /// The SSRC of the media source (browsers put the first media SSRC here).
    public var mediaSSRC: UInt32
    /// The transport-wide sequence number of the first packet described.
    public var baseSequenceNumber: UInt16
    /// The reference time, a signed 24-bit count of 64 ms ticks.
    public var referenceTime: Int32
    /// Incremented per feedback packet sent, to detect lost feedback.
    public var feedbackPacketCount: UInt8
    /// The status of packets `baseSequenceNumber`, `baseSequenceNumber + 1`, …
    public var packets: [PacketStatus]

    /// The duration of one delta tick, in microseconds.
    public static let deltaTickMicroseconds = 250
    /// The duration of one reference time tick, in milliseconds.
    public static let referenceTickMilliseconds = 64

    /// Creates a feedback packet.
    public init(senderSSRC: UInt32, mediaSSRC: UInt32, baseSequenceNumber: UInt16, referenceTime: Int32, feedbackPacketCount: UInt8, packets: [PacketStatus]) {
        self.senderSSRC = senderSSRC
        self.mediaSSRC = mediaSSRC
        self.baseSequenceNumber = baseSequenceNumber
        self.referenceTime = referenceTime
        self.feedbackPacketCount = feedbackPacketCount
        self.packets = packets
    }

    /// Status symbols (§3.1.1): 0 not received, 1 small delta, 2 large or negative delta.
    private static func symbol(of status: PacketStatus) -> UInt16 {
        switch status {
        case .notReceived: 0
        case .received(let delta): (0...255).contains(delta) ? 1 : 2
        }
    }

    init(parsing body: inout ByteBuffer) throws(RTPError) {
        guard let (sender, media, base, statusCount, referenceAndCount) = body.readMultipleIntegers(
            as: (UInt32, UInt32, UInt16, UInt16, UInt32).self)
        else {
            throw RTPError(.truncated, "transport-cc feedback is shorter than its 16-byte fixed part")
        }
        let count = Int(statusCount)
        var symbols: [UInt16] = []
        symbols.reserveCapacity(count)
        while symbols.count < count {
            guard let chunk = body.readInteger(as: UInt16.self) else {
                throw RTPError(.truncated, "transport-cc feedback announces \(count) statuses but its chunks end after \(symbols.count)")
            }
            if chunk & 0x8000 == 0 {
                // §3.1.3 run length chunk: 2-bit symbol, 13-bit run length.
                let symbol = chunk >> 13 & 0x3
                let run = Int(chunk & 0x1FFF)
                guard symbol != 3 else {
                    throw RTPError(.malformed, "transport-cc run length chunk uses the reserved symbol 3")
                }
                symbols.append(contentsOf: repeatElement(symbol, count: min(run, count - symbols.count)))
            } else if chunk & 0x4000 == 0 {
                // §3.1.4 status vector chunk, 14 one-bit symbols.
                for bit in (0..<14).reversed() where symbols.count < count {
                    symbols.append(chunk >> UInt16(bit) & 0x1)
                }
            } else {
                // §3.1.4 status vector chunk, 7 two-bit symbols.
                for pair in (0..<7).reversed() where symbols.count < count {
                    let symbol = chunk >> UInt16(pair * 2) & 0x3
                    guard symbol != 3 else {
                        throw RTPError(.malformed, "transport-cc status vector uses the reserved symbol 3")
                    }
                    symbols.append(symbol)
                }
            }
        }
        var packets: [PacketStatus] = []
        packets.reserveCapacity(count)
        for (index, symbol) in symbols.enumerated() {
            switch symbol {
            case 0:
                packets.append(.notReceived)
            case 1:
                guard let delta = body.readInteger(as: UInt8.self) else {
                    throw RTPError(.truncated, "transport-cc feedback lacks the receive delta of packet \(index)")
                }
                packets.append(.received(delta: Int16(delta)))
            default:
                guard let delta = body.readInteger(as: Int16.self) else {
                    throw RTPError(.truncated, "transport-cc feedback lacks the large receive delta of packet \(index)")
                }
                packets.append(.received(delta: delta))
            }
        }
        // Zero padding up to 32 bits may follow (§3.1); it carries nothing.
        let reference = Int32(bitPattern: referenceAndCount & 0xFFFF_FF00) >> 8
        self.init(senderSSRC: sender, mediaSSRC: media, baseSequenceNumber: base, referenceTime: reference,
                  feedbackPacketCount: UInt8(referenceAndCount & 0xFF), packets: packets)
    }

    func writeBody(into buffer: inout ByteBuffer) throws(RTPError) {
        guard packets.count <= Int(UInt16.max) else {
            throw RTPError(.invalidArgument, "transport-cc feedback describes at most 65535 packets, got \(packets.count)")
        }
        guard (-0x80_0000...0x7F_FFFF).contains(referenceTime) else {
            throw RTPError(.invalidArgument, "transport-cc reference time \(referenceTime) does not fit in 24 bits")
        }
        let referenceAndCount = UInt32(bitPattern: referenceTime << 8) | UInt32(feedbackPacketCount)
        buffer.writeMultipleIntegers(senderSSRC, mediaSSRC, baseSequenceNumber, UInt16(packets.count), referenceAndCount)
        let symbols = packets.map(Self.symbol(of:))
        var index = 0
        while index < symbols.count {
            var run = 1
            while index + run < symbols.count, symbols[index + run] == symbols[index], run < 0x1FFF { run += 1 }
            let window = symbols[index..<min(index + 14, symbols.count)]
            if run >= 14 || index + run == symbols.count {
                buffer.writeInteger(symbols[index] << 13 | UInt16(run))
                index += run
            } else if !window.contains(2) {
                var chunk: UInt16 = 0x8000
                for (offset, symbol) in window.enumerated() { chunk |= symbol << UInt16(13 - offset) }
                buffer.writeInteger(chunk)
                index += window.count
            } else {
                var chunk: UInt16 = 0xC000
                for (offset, symbol) in symbols[index..<min(index + 7, symbols.count)].enumerated() {
                    chunk |= symbol << UInt16(12 - offset * 2)
                }
                buffer.writeInteger(chunk)
                index += min(7, symbols.count - index)
            }
        }
        for packet in packets {
            guard case .received(let delta) = packet else { continue }
            if (0...255).contains(delta) {
                buffer.writeInteger(UInt8(delta))
            } else {
                buffer.writeInteger(delta)
            }
        }
    }
}
