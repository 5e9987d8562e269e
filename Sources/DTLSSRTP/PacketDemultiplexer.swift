public import NIOCore

/// What a datagram on the bundled ICE component carries, told apart by its first byte
/// (RFC 7983 §7, which updates RFC 5764 §5.1.2) and, for RTP versus RTCP, by its second
/// (RFC 5761 §4).
public enum DemultiplexedPacketKind: String, Sendable, Hashable {
    /// First byte 0–3: STUN (RFC 8489). libnice consumes these before we see them.
    case stun
    /// First byte 16–19: ZRTP (RFC 6189). Not used by WebRTC; dropped.
    case zrtp
    /// First byte 20–63: a DTLS record (content types 20–63).
    case dtls
    /// First byte 64–79: TURN ChannelData (RFC 8656 §12). Never ours on a client component.
    case turnChannel
    /// First byte 128–191 and a second byte outside 192–223: SRTP.
    case srtp
    /// First byte 128–191 and a second byte (packet type) 192–223: SRTCP (RFC 5761 §4).
    case srtcp
    /// Anything else, including an empty datagram or an RTP/RTCP byte with no second byte:
    /// RFC 7983 §7 says to drop it.
    case unknown
}

/// The RFC 7983 demultiplexer for one bundled, rtcp-muxed component. Pure: it looks at the
/// first two bytes only and never traps, whatever the input.
public enum PacketDemultiplexer {
    /// Classifies `datagram` by its first byte (RFC 7983 §7):
    ///
    /// ```
    ///             +----------------+
    ///             |        [0..3] -+--> forward to STUN
    ///             |                |
    ///             |      [16..19] -+--> forward to ZRTP
    ///             |                |
    /// packet -->  |      [20..63] -+--> forward to DTLS
    ///             |                |
    ///             |      [64..79] -+--> forward to TURN Channel
    ///             |                |
    ///             |    [128..191] -+--> forward to RTP/RTCP
    ///             +----------------+
    /// ```
    ///
    /// RTP and RTCP share the range; RFC 5761 §4 separates them by the second byte, which for
    /// RTCP is a packet type in 192–223 (SR 200, RR 201, SDES 202, BYE 203, APP 204, RTPFB 205,
    /// PSFB 206, XR 207) and for RTP is the marker bit and a payload type that must avoid
    /// 64–95.
    public static func classify(_ datagram: ByteBuffer) -> DemultiplexedPacketKind {
        guard let first = datagram.getInteger(at: datagram.readerIndex, as: UInt8.self) else { return .unknown }
        return classify(first: first, second: datagram.getInteger(at: datagram.readerIndex + 1, as: UInt8.self))
    }

    /// Classifies a datagram given as raw bytes.
    public static func classify(_ bytes: UnsafeRawBufferPointer) -> DemultiplexedPacketKind {
        guard let first = bytes.first else { return .unknown }
        return classify(first: first, second: bytes.count > 1 ? bytes[1] : nil)
    }

    /// Classifies by the first byte and, when present, the second.
    public static func classify(first: UInt8, second: UInt8?) -> DemultiplexedPacketKind {
        switch first {
        case 0...3: return .stun
        case 16...19: return .zrtp
        case 20...63: return .dtls
        case 64...79: return .turnChannel
        case 128...191:
            guard let second else { return .unknown }
            return (192...223).contains(second) ? .srtcp : .srtp
        default: return .unknown
        }
    }
}
