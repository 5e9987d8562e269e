import Media
import RTP

/// The forwarder's own feedback on one participant's uplink: the forwarder is the receiver of
/// what a participant sends, so it sends what a receiver sends (the core ends the reports other
/// participants make of their own hop, docs/rooms.md "The forwarding core"):
///
/// - transport-cc feedback every 100 ms (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1),
///   from which the participant's rate control estimates its uplink;
/// - a receiver report every second (RFC 3550 §6.4.2) with a block per source — loss, jitter and
///   LSR/DLSR for its round-trip time — which also keeps its liveness watch fed while it is alone.
struct UplinkFeedback {
    /// The forwarder's SSRC as the reporter (one per participant, never a stream's).
    let reporterSSRC = UInt32.random(in: 1...UInt32.max)
    private let transportCCExtensionID: UInt8?
    private let extensions: ForwardingExtensionIDs
    /// What arrived per SSRC (media, RTX, padding), for the forwarder's log.
    private(set) var counts = UplinkPacketCounts()
    private var receptions: [UInt32: ReceptionStatistics] = [:]
    private var transportFeedback: TransportFeedbackGenerator?
    private var lastFeedback: Duration = .zero
    /// When the oldest packet not yet in a feedback arrived: how late the feedback tells of it.
    private var oldestUnreported: Duration?
    private var lastReport: Duration = .zero

    static let feedbackInterval: Duration = .milliseconds(100)
    static let reportInterval: Duration = .seconds(1)
    /// RFC 3550 §6.4.2: a report has at most 31 blocks.
    static let maxReportedSources = 31

    init(extensions: ForwardingExtensionIDs) {
        transportCCExtensionID = extensions.transportWideCC
        self.extensions = extensions
    }

    /// An RTP packet from the participant, whatever the core made of it (what arrived is what
    /// the uplink carried). `source` is the kind of media stream its SSRC is, as the core knows
    /// it (``SelectiveForwarder/sourceKind(of:from:)``: declared, or a simulcast layer learned
    /// from its rid), `nil` for RTX and foreign SSRCs, which are not reported: so each simulcast
    /// layer gets its own report block, for its loss and round-trip time.
    mutating func received(_ packet: RTPPacket, bytes: Int, source: ForwardedSource.Kind?, now: Duration) {
        counts.count(packet, bytes: bytes, extensions: extensions, kind: source?.rawValue)
        if let id = transportCCExtensionID, let element = packet.headerExtension?.element(id: id), element.readableBytes == 2,
           let sequence = element.getInteger(at: element.readerIndex, as: UInt16.self) {
            if transportFeedback == nil { transportFeedback = TransportFeedbackGenerator(senderSSRC: reporterSSRC, mediaSSRC: packet.ssrc) }
            transportFeedback?.packetArrived(sequence: sequence, arrival: now)
            if oldestUnreported == nil { oldestUnreported = now }
        }
        guard let source else { return }
        if receptions[packet.ssrc] == nil {
            // The core bounds a participant's streams; this bound only keeps the report valid.
            guard receptions.count < Self.maxReportedSources else { return }
            receptions[packet.ssrc] = ReceptionStatistics(ssrc: packet.ssrc, clockRate: source == .audio ? 48_000 : 90_000)
        }
        receptions[packet.ssrc]?.record(sequenceNumber: packet.sequenceNumber, timestamp: packet.timestamp, arrival: now)
    }

    /// A compound RTCP packet from the participant: its sender reports, for LSR/DLSR.
    mutating func received(rtcp packets: [RTCPPacket], now: Duration) {
        for case .senderReport(let report) in packets where receptions[report.ssrc] != nil {
            receptions[report.ssrc]?.senderReportReceived(report, arrival: now)
        }
    }

    /// What is due now: transport-cc feedback, and a receiver report once a second.
    mutating func due(now: Duration) -> [RTCPPacket] {
        var packets: [RTCPPacket] = []
        if now - lastReport >= Self.reportInterval {
            lastReport = now
            // RFC 3550 §6.1: every compound packet starts with a report.
            let blocks = receptions.keys.sorted().prefix(Self.maxReportedSources).compactMap { receptions[$0]?.makeReportBlock(now: now) }
            packets.append(.receiverReport(RTCPReceiverReport(ssrc: reporterSSRC, reports: blocks)))
        }
        if now - lastFeedback >= Self.feedbackInterval {
            lastFeedback = now
            if let feedback = transportFeedback?.makeFeedback() {
                counts.reported(feedback, lateArrivals: transportFeedback?.lateArrivals ?? 0, delay: oldestUnreported.map { now - $0 } ?? .zero)
                oldestUnreported = nil
                if packets.isEmpty { packets.append(.receiverReport(RTCPReceiverReport(ssrc: reporterSSRC))) }
                packets.append(.transportFeedback(feedback))
            }
        }
        return packets
    }
}
