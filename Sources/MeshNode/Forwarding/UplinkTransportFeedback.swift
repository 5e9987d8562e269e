import Media
import NIOCore
import RTP

/// The forwarder's transport-cc feedback on one participant's uplink
/// (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1), made as the participant's packets
/// leave its transport, off the ``ForwardedCall`` actor: the actor forwards every participant's
/// packets in turn and on a loaded machine ran up to 1.5 s behind, and the sender counts every
/// byte not yet in a feedback as in flight — Chromium cut its encoder to its floor while that
/// exceeded its congestion window (docs/rooms.md "Chromium's top layer"). The arrival times it
/// reports are the ones taken at the socket (§3.1's "receive time"), which the queues in front
/// of it do not shift (docs/rooms.md "Arrival times are taken at the socket").
struct UplinkTransportFeedback {
    /// The forwarder's SSRC as the reporter of this participant's uplink.
    let reporterSSRC: UInt32
    private let extensionID: UInt8?
    private let epoch: ContinuousClock.Instant
    private var generator: TransportFeedbackGenerator?
    private var lastFeedback: ContinuousClock.Instant?
    /// When the oldest packet not yet in a feedback arrived: how late the feedback tells of it.
    private var oldestUnreported: ContinuousClock.Instant?
    private(set) var statistics = Statistics()

    /// 50 ms, as a libwebrtc receiver sends it at these rates (its interval aims at 5 % of the
    /// bitrate, between 50 and 250 ms).
    static let interval: Duration = .milliseconds(50)

    /// What the feedback told the sender, for the forwarder's log.
    struct Statistics: CustomStringConvertible {
        var feedbackPackets = 0
        var received = 0
        var lost = 0
        var lateArrivals = 0
        /// How long after its oldest packet came off the socket each recent feedback went out:
        /// the queues' wait in front of the feedback, which the sender counts as bytes in flight.
        var delays: [Duration] = []
        static let keptDelays = 50

        var description: String {
            let sorted = delays.map { Int($0 / .milliseconds(1)) }.sorted()
            let delay = sorted.isEmpty ? "-" : "median \(sorted[sorted.count / 2]) ms, max \(sorted.last!) ms over the last \(sorted.count)"
            return "transport-cc: \(feedbackPackets) feedback packets (delay \(delay)), \(received) reported received, \(lost) lost, \(lateArrivals) late"
        }
    }

    /// - Parameters:
    ///   - extensionID: the transport-wide sequence number's id in the participant's offer; nil
    ///     when not negotiated (then no feedback is made).
    ///   - epoch: the instant the feedback's arrival times count from.
    init(reporterSSRC: UInt32, extensionID: UInt8?, epoch: ContinuousClock.Instant) {
        self.reporterSSRC = reporterSSRC
        self.extensionID = extensionID
        self.epoch = epoch
    }

    /// An RTP packet from the participant that came off the socket at `arrival`, read `now`;
    /// whatever else happens to it (the core may refuse it), the uplink carried it. Returns the
    /// compound RTCP to send back when a feedback is due (at most every ``interval`` of `now`).
    mutating func received(_ bytes: ByteBuffer, at arrival: ContinuousClock.Instant, now: ContinuousClock.Instant) -> [RTCPPacket]? {
        guard let packet = try? RTPPacket(parsing: bytes) else { return nil }
        return received(packet, at: arrival, now: now)
    }

    /// ``received(_:at:now:)-(ByteBuffer,_,_)`` for a packet already parsed.
    mutating func received(_ packet: RTPPacket, at arrival: ContinuousClock.Instant, now: ContinuousClock.Instant) -> [RTCPPacket]? {
        guard let extensionID,
              let element = packet.headerExtension?.element(id: extensionID), element.readableBytes == 2,
              let sequence = element.getInteger(at: element.readerIndex, as: UInt16.self) else { return nil }
        if generator == nil { generator = TransportFeedbackGenerator(senderSSRC: reporterSSRC, mediaSSRC: packet.ssrc) }
        let sinceEpoch = arrival - epoch
        generator?.packetArrived(sequence: sequence, arrival: sinceEpoch)
        if oldestUnreported == nil { oldestUnreported = arrival }
        return due(now: now)
    }

    private mutating func due(now: ContinuousClock.Instant) -> [RTCPPacket]? {
        if let lastFeedback, now - lastFeedback < Self.interval { return nil }
        guard let feedback = generator?.makeFeedback() else { return nil }
        lastFeedback = now
        statistics.feedbackPackets += 1
        for status in feedback.packets {
            if case .received = status { statistics.received += 1 } else { statistics.lost += 1 }
        }
        statistics.lateArrivals = generator?.lateArrivals ?? 0
        statistics.delays.append(oldestUnreported.map { now - $0 } ?? .zero)
        if statistics.delays.count > Statistics.keptDelays { statistics.delays.removeFirst() }
        oldestUnreported = nil
        // RFC 3550 §6.1: a compound RTCP packet starts with a report (an empty one here; the
        // actor sends the full receiver reports once a second).
        return [.receiverReport(RTCPReceiverReport(ssrc: reporterSSRC)), .transportFeedback(feedback)]
    }
}
