import NIOCore
import RTP
import Codecs

/// The sending half of one VP8 stream: encoder, RFC 7741 packetizer and retransmission history,
/// answering the receiver's RTCP feedback — NACK with retransmissions (RFC 4585 §6.2.1, RFC 4588),
/// PLI and FIR with a keyframe (RFC 4585 §6.3.1, RFC 5104 §4.3.1) — and measuring the round-trip
/// time from receiver reports that echo its sender reports (RFC 3550 §6.4.1).
///
/// Sans-IO: it returns packets to send and never touches a socket. Not `Sendable`: it owns an encoder.
public final class VideoSendStream {
    /// Counters for statistics.
    public struct Counters: Hashable, Sendable {
        /// Frames encoded and sent.
        public var frames = 0
        /// Keyframes among them.
        public var keyframes = 0
        /// RTP packets sent, retransmissions not included.
        public var packets = 0
        /// Bytes of those packets (RTP header and payload).
        public var bytes = 0
        /// Packets retransmitted in answer to NACKs.
        public var retransmissions = 0
        /// PLIs and FIRs answered with a keyframe.
        public var keyframeRequests = 0
        /// NACK packets received.
        public var nacksReceived = 0
    }

    /// The media SSRC.
    public let ssrc: UInt32
    /// The encoder, whose bitrate a rate controller may change.
    public let encoder: VP8Encoder
    private var packetizer: VP8Packetizer
    private var history: RetransmissionHistory
    private var roundTrip = RoundTripTimeEstimator()
    private var lastTimestamp: (rtp: UInt32, time: Duration)?
    /// Counters so far.
    public private(set) var counters = Counters()

    /// Creates a stream.
    ///
    /// - Parameters:
    ///   - retransmission: `.plain` resends the original packets, `.rtx` wraps them (RFC 4588).
    ///   - reservedExtensionBytes: room kept in every packet for header extensions added later
    ///     (8 bytes for a transport-wide sequence number, RFC 8285 one-byte form).
    /// - Throws: ``CodecError`` or ``RTPError`` when the encoder or packetizer refuses the settings.
    public init(encoder configuration: VP8Encoder.Configuration, payloadType: UInt8 = 96, ssrc: UInt32,
                retransmission: RetransmissionHistory.Mode = .plain, firstSequenceNumber: UInt16 = 0,
                reservedExtensionBytes: Int = 0) throws {
        self.ssrc = ssrc
        self.encoder = try VP8Encoder(configuration)
        self.packetizer = try VP8Packetizer(payloadType: payloadType, ssrc: ssrc, firstSequenceNumber: firstSequenceNumber,
                                            reservedExtensionBytes: reservedExtensionBytes)
        self.history = RetransmissionHistory(mode: retransmission)
    }

    /// The round-trip time, which keeps a packet from being resent twice within one RTT. Receiver
    /// reports that echo this stream's sender reports update it (RFC 3550 §6.4.1).
    public var roundTripTime: Duration {
        get { history.roundTripTime }
        set { history.roundTripTime = newValue }
    }

    /// The latest RTT measured from a receiver report, if any.
    public var measuredRoundTripTime: Duration? { roundTrip.smoothed }

    /// A sender report (RFC 3550 §6.4.1) stamped with `now` (NTP form of the caller's clock) and the
    /// RTP time that corresponds to it.
    public func senderReport(now: Duration) -> RTCPPacket {
        var rtpTimestamp: UInt32 = 0
        if let last = lastTimestamp {
            rtpTimestamp = last.rtp &+ UInt32(truncatingIfNeeded: Int64((now - last.time).seconds * Double(VP8Encoder.clockRate)))
        }
        return .senderReport(RTCPSenderReport(
            ssrc: ssrc, ntpTimestamp: RoundTripTimeEstimator.ntp(now), rtpTimestamp: rtpTimestamp,
            packetCount: UInt32(truncatingIfNeeded: counters.packets), octetCount: UInt32(truncatingIfNeeded: counters.bytes)))
    }

    /// Encodes a picture taken at RTP time `timestamp` and returns its packets, remembered for retransmission.
    public func send(_ picture: VideoFrame, timestamp: UInt32, now: Duration) throws -> [RTPPacket] {
        guard let encoded = try encoder.encode(picture, timestamp: timestamp) else { return [] }
        return send(encoded: encoded, now: now)
    }

    /// Packetizes an already encoded frame (from a file, say) and remembers its packets.
    public func send(encoded: VP8Encoder.EncodedFrame, now: Duration) -> [RTPPacket] {
        let packets = packetizer.packetize(frame: encoded.data, timestamp: encoded.timestamp)
        lastTimestamp = (encoded.timestamp, now)
        counters.frames += 1
        if encoded.isKeyframe { counters.keyframes += 1 }
        for packet in packets {
            history.record(packet, now: now)
            counters.packets += 1
            counters.bytes += RTPPacket.fixedHeaderSize + packet.payload.readableBytes
        }
        return packets
    }

    /// Handles one RTCP packet from the receiver and returns the retransmissions it calls for.
    /// Feedback for other SSRCs is ignored.
    public func handle(_ feedback: RTCPPacket, now: Duration) -> [RTPPacket] {
        switch feedback {
        case .nack(let nack) where nack.mediaSSRC == ssrc:
            counters.nacksReceived += 1
            let packets = history.retransmissions(for: nack, ssrc: ssrc, now: now)
            counters.retransmissions += packets.count
            return packets
        case .pictureLossIndication(let pli) where pli.mediaSSRC == ssrc:
            counters.keyframeRequests += 1
            encoder.requestKeyframe()
        case .fullIntraRequest(let fir) where fir.entries.contains(where: { $0.ssrc == ssrc }):
            counters.keyframeRequests += 1
            encoder.requestKeyframe()
        case .receiverReport(let report):
            for block in report.reports where block.ssrc == ssrc {
                if roundTrip.update(with: block, arrival: now) != nil, let smoothed = roundTrip.smoothed {
                    history.roundTripTime = smoothed
                }
            }
        default:
            break
        }
        return []
    }
}
