import NIOCore

/// Receiver estimated maximum bitrate, RTCP PT 206 FMT 15 with the "REMB" identifier
/// (draft-alvestrand-rmcat-remb-03 §2.2).
public struct RTCPReceiverEstimatedMaxBitrate: Hashable, Sendable {
    static let format: UInt8 = 15
    private static let identifier: UInt32 = 0x5245_4D42  // "REMB"

    /// The SSRC of the packet's sender.
    public var senderSSRC: UInt32
    /// The estimated total bitrate, in bits per second, for all of ``ssrcs``. The wire form keeps an
    /// 18-bit mantissa and a 6-bit exponent, so large values are rounded down.
    public var bitrate: UInt64
    /// The media sources the estimate applies to.
    public var ssrcs: [UInt32]

    /// Creates a REMB.
    public init(senderSSRC: UInt32, bitrate: UInt64, ssrcs: [UInt32]) {
        self.senderSSRC = senderSSRC
        self.bitrate = bitrate
        self.ssrcs = ssrcs
    }

    /// Whether an application-layer feedback body carries the REMB identifier.
    static func matches(_ body: ByteBuffer) -> Bool {
        body.getInteger(at: body.readerIndex + 8, as: UInt32.self) == identifier
    }

    init(parsing body: inout ByteBuffer) throws(RTPError) {
        guard let (sender, _, _, packed) = body.readMultipleIntegers(as: (UInt32, UInt32, UInt32, UInt32).self) else {
            throw RTPError(.truncated, "RTCP REMB is shorter than its 16-byte fixed part")
        }
        let count = Int(packed >> 24)
        let exponent = UInt64(packed >> 18 & 0x3F)
        let mantissa = UInt64(packed & 0x3_FFFF)
        var ssrcs: [UInt32] = []
        for index in 0..<count {
            guard let ssrc = body.readInteger(as: UInt32.self) else {
                throw RTPError(.truncated, "RTCP REMB announces \(count) SSRCs but ends after \(index)")
            }
            ssrcs.append(ssrc)
        }
        guard exponent < 47 || mantissa == 0 else {
            throw RTPError(.malformed, "RTCP REMB bitrate \(mantissa)·2^\(exponent) overflows 64 bits")
        }
        self.init(senderSSRC: sender, bitrate: mantissa << exponent, ssrcs: ssrcs)
    }

    func writeBody(into buffer: inout ByteBuffer) throws(RTPError) {
        guard ssrcs.count <= 255 else {
            throw RTPError(.invalidArgument, "an RTCP REMB names at most 255 SSRCs, got \(ssrcs.count)")
        }
        var mantissa = bitrate
        var exponent: UInt32 = 0
        while mantissa > 0x3_FFFF {
            mantissa >>= 1
            exponent += 1
        }
        buffer.writeMultipleIntegers(senderSSRC, UInt32(0), Self.identifier, UInt32(ssrcs.count) << 24 | exponent << 18 | UInt32(mantissa))
        for ssrc in ssrcs { buffer.writeInteger(ssrc) }
    }
}
