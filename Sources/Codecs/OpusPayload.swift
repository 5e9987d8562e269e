import NIOCore

/// An Opus RTP payload (RFC 7587 §4.2): exactly one Opus packet, whose TOC byte (RFC 6716 §3.1)
/// tells its duration. The RTP clock is always 48 kHz (RFC 7587 §4.1).
public struct OpusPayload: Hashable, Sendable {
    /// The RTP clock rate for Opus, whatever the encoder's internal rate (RFC 7587 §4.1).
    public static let clockRate = 48_000

    /// The Opus packet.
    public var packet: ByteBuffer
    /// The codec mode the TOC selects.
    public var mode: Mode
    /// Whether the packet is coded in stereo (TOC `s` bit).
    public var isStereo: Bool
    /// Frames in the packet (1–48).
    public var frameCount: Int
    /// Samples per channel of one frame at 48 kHz (120, 240, 480, 960, 1920 or 2880).
    public var samplesPerFrame: Int

    /// Opus's coding modes (RFC 6716 §3.1, Table 2).
    public enum Mode: Hashable, Sendable {
        case silk, hybrid, celt
    }

    /// Duration of the packet in 48 kHz samples per channel: how far the next packet's RTP timestamp advances.
    public var samplesPerChannel: Int { frameCount * samplesPerFrame }

    /// Reads an RTP payload as an Opus packet.
    ///
    /// - Throws: ``CodecError`` `.truncated` for an empty payload or a code 3 packet without its frame
    ///   count, `.malformed` for zero frames or more than 120 ms (RFC 6716 §3.2.5, R5).
    public init(parsing payload: ByteBuffer) throws(CodecError) {
        guard let toc = payload.getInteger(at: payload.readerIndex, as: UInt8.self) else {
            throw CodecError(.truncated, "empty Opus RTP payload (RFC 7587 §4.2 carries one Opus packet of at least one byte)")
        }
        let config = Int(toc >> 3)
        switch config {
        case 0...11:
            mode = .silk
            samplesPerFrame = [480, 960, 1920, 2880][config % 4]
        case 12...15:
            mode = .hybrid
            samplesPerFrame = [480, 960][config % 2]
        default:
            mode = .celt
            samplesPerFrame = [120, 240, 480, 960][config % 4]
        }
        isStereo = toc & 0x04 != 0
        switch toc & 0x03 {
        case 0: frameCount = 1
        case 1, 2: frameCount = 2
        default:
            guard let countByte = payload.getInteger(at: payload.readerIndex + 1, as: UInt8.self) else {
                throw CodecError(.truncated, "Opus code 3 packet lacks its frame count byte (RFC 6716 §3.2.5)")
            }
            frameCount = Int(countByte & 0x3F)
            guard frameCount > 0 else {
                throw CodecError(.malformed, "Opus code 3 packet with zero frames (RFC 6716 §3.2.5)")
            }
        }
        guard frameCount * samplesPerFrame <= 5760 else {
            throw CodecError(.malformed, "Opus packet of \(frameCount * samplesPerFrame / 48) ms exceeds 120 ms (RFC 6716 §3.2.5)")
        }
        packet = payload
    }
}
