import Media
import RTP

/// The forwarder's receiver reports on one participant's uplink: the forwarder is the receiver
/// of what a participant sends, so it sends what a receiver sends (the core ends the reports
/// other participants make of their own hop, docs/rooms.md "The forwarding core"): a receiver
/// report every second (RFC 3550 §6.4.2) with a block per source — loss, jitter and LSR/DLSR for
/// its round-trip time — which also keeps its liveness watch fed while it is alone. The
/// transport-cc feedback, from which the participant's rate control estimates its uplink, is
/// made before the actor (``UplinkTransportFeedback``).
struct UplinkFeedback {
    /// The forwarder's SSRC as the reporter (one per participant, never a stream's).
    let reporterSSRC = UInt32.random(in: 1...UInt32.max)
    private let extensions: ForwardingExtensionIDs
    private var receptions: [UInt32: ReceptionStatistics] = [:]
    private var lastReport: Duration = .zero
    /// What arrived per SSRC (media, RTX, padding), for the forwarder's log.
    private(set) var counts = UplinkPacketCounts()

    static let reportInterval: Duration = .seconds(1)
    /// RFC 3550 §6.4.2: a report has at most 31 blocks.
    static let maxReportedSources = 31

    init(extensions: ForwardingExtensionIDs) {
        self.extensions = extensions
    }

    /// An RTP packet from the participant, whatever the core made of it (what arrived is what
    /// the uplink carried). `source` is the kind of media stream its SSRC is, as the core knows
    /// it (``SelectiveForwarder/sourceKind(of:from:)``: declared, or a simulcast layer learned
    /// from its rid), `nil` for RTX and foreign SSRCs, which are not reported: so each simulcast
    /// layer gets its own report block, for its loss and round-trip time.
    mutating func received(_ packet: RTPPacket, bytes: Int, source: ForwardedSource.Kind?, now: Duration) {
        counts.count(packet, bytes: bytes, extensions: extensions, kind: source?.rawValue)
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

    /// The receiver report, once a second.
    mutating func due(now: Duration) -> [RTCPPacket] {
        guard now - lastReport >= Self.reportInterval else { return [] }
        lastReport = now
        let blocks = receptions.keys.sorted().prefix(Self.maxReportedSources).compactMap { receptions[$0]?.makeReportBlock(now: now) }
        return [.receiverReport(RTCPReceiverReport(ssrc: reporterSSRC, reports: blocks))]
    }
}
