import RTP
import Codecs
/// The sender's bandwidth estimate in the style of Google Congestion Control
/// (draft-ietf-rmcat-gcc-02): the minimum of a delay-based estimate from transport-wide feedback
/// (packet groups → ``TrendlineEstimator`` → ``OveruseDetector`` → ``AIMDRateControl``), a
/// loss-based estimate from receiver reports (``LossBasedBandwidthEstimator``), and the receiver's
/// REMB when it sends one (draft-alvestrand-rmcat-remb-03).
///
/// Sans-IO: the caller reports each packet it sends and each piece of feedback it receives, with
/// the time; ``targetBitrate`` is what the encoders should share (see ``BitrateAllocation``).
public struct SendSideBandwidthEstimator: Sendable {
    /// Limits and starting point, in bits per second.
    public struct Configuration: Sendable {
        public var startBitrate: Double
        public var minimumBitrate: Double
        public var maximumBitrate: Double
        /// How far the delay-based estimate may run ahead of what the receiver acknowledged
        /// (``AIMDRateControl/acknowledgedHeadroom``); `nil` for no limit.
        public var acknowledgedHeadroom: Double?

        /// Creates limits; WebRTC starts at 300 kb/s.
        public init(startBitrate: Double = 300_000, minimumBitrate: Double = 50_000, maximumBitrate: Double = 5_000_000,
                    acknowledgedHeadroom: Double? = 1.5) {
            self.startBitrate = startBitrate
            self.minimumBitrate = minimumBitrate
            self.maximumBitrate = maximumBitrate
            self.acknowledgedHeadroom = acknowledgedHeadroom
        }
    }

    /// The settings in force.
    public let configuration: Configuration
    private var adapter = TransportFeedbackAdapter()
    private var groups = PacketGroupDeltas()
    private var trendline = TrendlineEstimator()
    private var detector = OveruseDetector()
    private var aimd: AIMDRateControl
    private var lossBased: LossBasedBandwidthEstimator
    private var acknowledged = BitrateMeter(window: .milliseconds(500))
    private var remb: Double?
    private var usesDelayBasedEstimate = false

    /// Creates an estimator.
    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        self.aimd = AIMDRateControl(startBitrate: configuration.startBitrate, minimumBitrate: configuration.minimumBitrate,
                                    maximumBitrate: configuration.maximumBitrate)
        aimd.acknowledgedHeadroom = configuration.acknowledgedHeadroom
        self.lossBased = LossBasedBandwidthEstimator(startBitrate: configuration.startBitrate, minimumBitrate: configuration.minimumBitrate,
                                                     maximumBitrate: configuration.maximumBitrate)
    }

    /// The round-trip time (from RTCP LSR/DLSR, RFC 3550 §6.4.1), which paces increases and decreases.
    public var roundTripTime: Duration = .milliseconds(100) {
        didSet {
            aimd.roundTripTime = roundTripTime
            lossBased.roundTripTime = roundTripTime
        }
    }

    /// The rate the encoders should share now, in bits per second.
    public var targetBitrate: Double {
        var target = lossBased.bitrate
        if usesDelayBasedEstimate { target = min(target, aimd.bitrate) }
        if let remb { target = min(target, remb) }
        return min(max(target, configuration.minimumBitrate), configuration.maximumBitrate)
    }

    /// The delay-based estimate alone, in bits per second.
    public var delayBasedBitrate: Double { aimd.bitrate }
    /// The loss-based estimate alone, in bits per second.
    public var lossBasedBitrate: Double { lossBased.bitrate }
    /// What the receiver acknowledged over the last half second, in bits per second.
    public private(set) var acknowledgedBitrate: Double?
    /// The detector's latest conclusion.
    public var congestionSignal: OveruseDetector.Signal { detector.signal }

    /// Numbers a packet of `size` bytes (headers included) sent at `now`; the result goes into its
    /// transport-wide sequence number header extension.
    public mutating func packetSent(size: Int, now: Duration) -> UInt16 {
        adapter.packetSent(size: size, now: now)
    }

    /// Handles one RTCP packet at `now`: transport-cc feedback, receiver reports (fraction lost) and REMB.
    /// Returns whether the target changed.
    @discardableResult
    public mutating func handle(_ packet: RTCPPacket, now: Duration) -> Bool {
        let before = targetBitrate
        switch packet {
        case .transportFeedback(let feedback):
            handleTransportFeedback(feedback, now: now)
        case .receiverReport(let report):
            if let block = report.reports.first { lossBased.update(fractionLost: block.fractionLost, currentTarget: before, now: now) }
        case .senderReport(let report):
            if let block = report.reports.first { lossBased.update(fractionLost: block.fractionLost, currentTarget: before, now: now) }
        case .receiverEstimatedMaxBitrate(let estimate):
            remb = Double(estimate.bitrate)
        default:
            break
        }
        return targetBitrate != before
    }

    private mutating func handleTransportFeedback(_ feedback: RTCPTransportFeedback, now: Duration) {
        let results = adapter.results(of: feedback).filter { $0.arrivalTime != nil }.sorted { $0.sendTime < $1.sendTime }
        guard !results.isEmpty else { return }
        usesDelayBasedEstimate = true
        for result in results {
            guard let arrival = result.arrivalTime else { continue }
            acknowledged.add(bytes: result.size, at: arrival)
            if let delta = groups.add(sendTime: result.sendTime, arrivalTime: arrival) {
                let trend = trendline.update(delta)
                detector.detect(trend: trend, sendDelta: delta.sendDelta, deltaCount: trendline.deltaCount, now: now)
            }
        }
        if let lastArrival = results.compactMap(\.arrivalTime).max() {
            acknowledgedBitrate = acknowledged.bitsPerSecond(now: lastArrival)
        }
        aimd.update(signal: detector.signal, acknowledgedBitrate: acknowledgedBitrate, now: now)
    }
}
