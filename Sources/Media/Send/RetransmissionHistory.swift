import NIOCore
import RTP
import Codecs

/// The sender's memory of recently sent RTP packets, which answers generic NACKs (RFC 4585 §6.2.1)
/// with retransmissions: the original packets again, or RTX packets in their own stream (RFC 4588).
///
/// Packets are kept for ``Configuration/maxAge`` and at most ``Configuration/capacity`` of them. A
/// packet is not sent again within ``Configuration/minResendInterval`` (or one RTT, if larger) of
/// its last transmission: a receiver that NACKs twice in quick succession is answered once.
public struct RetransmissionHistory: Sendable {
    /// How retransmissions are sent.
    public enum Mode: Hashable, Sendable {
        /// The original packet, unchanged (RFC 4585 allows this when RTX is not negotiated).
        case plain
        /// RTX packets (RFC 4588) with this payload type and SSRC; sequence numbers count from `firstSequenceNumber`.
        case rtx(payloadType: UInt8, ssrc: UInt32, firstSequenceNumber: UInt16)
    }

    /// Limits.
    public struct Configuration: Sendable {
        /// Packets kept at most.
        public var capacity: Int
        /// How long a packet is kept after it was first sent.
        public var maxAge: Duration
        /// The shortest time between two transmissions of one packet.
        public var minResendInterval: Duration

        /// Creates limits; the defaults hold about a second of a 2 Mb/s stream.
        public init(capacity: Int = 600, maxAge: Duration = .seconds(1), minResendInterval: Duration = .milliseconds(10)) {
            self.capacity = capacity
            self.maxAge = maxAge
            self.minResendInterval = minResendInterval
        }
    }

    private struct Entry: Sendable {
        var packet: RTPPacket
        var firstSent: Duration
        var lastSent: Duration
        var resends: Int
    }

    /// The settings in force.
    public var configuration: Configuration
    /// How retransmissions are sent.
    public let mode: Mode
    /// The round-trip time; a packet is not resent twice within one RTT.
    public var roundTripTime: Duration = .zero
    private var entries: [UInt16: Entry] = [:]
    private var order: [UInt16] = []
    private var orderStart = 0
    private var nextRTXSequence: UInt16

    /// Packets retransmitted.
    public private(set) var retransmitted = 0
    /// Requested packets no longer (or never) in the history.
    public private(set) var missed = 0

    /// Creates an empty history.
    public init(mode: Mode = .plain, configuration: Configuration = Configuration()) {
        self.mode = mode
        self.configuration = configuration
        if case .rtx(_, _, let first) = mode { nextRTXSequence = first } else { nextRTXSequence = 0 }
    }

    /// Packets held now.
    public var count: Int { entries.count }

    /// Remembers a packet sent at `now`.
    public mutating func record(_ packet: RTPPacket, now: Duration) {
        if entries[packet.sequenceNumber] == nil { order.append(packet.sequenceNumber) }
        entries[packet.sequenceNumber] = Entry(packet: packet, firstSent: now, lastSent: now, resends: 0)
        evict(now: now)
    }

    /// The packets to send in answer to a NACK for `sequenceNumbers` received at `now`, in the order asked.
    public mutating func retransmissions(for sequenceNumbers: [UInt16], now: Duration) -> [RTPPacket] {
        evict(now: now)
        let guardInterval = max(configuration.minResendInterval, roundTripTime)
        var packets: [RTPPacket] = []
        for sequence in sequenceNumbers {
            guard let entry = entries[sequence] else {
                missed += 1
                continue
            }
            if entry.resends > 0, now - entry.lastSent < guardInterval { continue }
            entries[sequence]?.lastSent = now
            entries[sequence]?.resends += 1
            retransmitted += 1
            switch mode {
            case .plain:
                packets.append(entry.packet)
            case .rtx(let payloadType, let ssrc, _):
                packets.append(RTXPacket.wrap(entry.packet, payloadType: payloadType, ssrc: ssrc, sequenceNumber: nextRTXSequence))
                nextRTXSequence &+= 1
            }
        }
        return packets
    }

    /// Answers an RTCP NACK for this stream; NACKs for other SSRCs get nothing.
    public mutating func retransmissions(for nack: RTCPGenericNACK, ssrc: UInt32, now: Duration) -> [RTPPacket] {
        guard nack.mediaSSRC == ssrc else { return [] }
        return retransmissions(for: nack.lostSequenceNumbers, now: now)
    }

    private mutating func evict(now: Duration) {
        while orderStart < order.count {
            let sequence = order[orderStart]
            guard let entry = entries[sequence] else {
                orderStart += 1
                continue
            }
            guard entries.count > configuration.capacity || now - entry.firstSent > configuration.maxAge else { break }
            entries[sequence] = nil
            orderStart += 1
        }
        if orderStart > 4096 {
            order.removeFirst(orderStart)
            orderStart = 0
        }
    }
}
