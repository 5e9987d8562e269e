import Foundation

/// The rate controller of Google Congestion Control (draft-ietf-rmcat-gcc-02 §5.5): additive
/// increase / multiplicative decrease driven by the ``OveruseDetector``.
///
/// - over-use: the rate drops to β = 0.85 of what the receiver actually got (the acknowledged
///   bitrate), and that rate is remembered as an estimate of the link capacity;
/// - normal: the rate grows by 8 % per second while far from the remembered capacity, and by
///   about one packet per response time (RTT + 100 ms) near it;
/// - under-use: the rate holds while the queue drains.
///
/// The rate never runs ahead of 1.5 × the acknowledged bitrate, so an application that sends less
/// than it may does not build up a target it could never use.
public struct AIMDRateControl: Sendable {
    private enum State: Sendable { case hold, increase, decrease }

    /// The multiplicative decrease factor.
    public let beta: Double
    /// The bounds of the estimate, in bits per second.
    public var minimumBitrate: Double
    public var maximumBitrate: Double
    /// The round-trip time, for the additive increase.
    public var roundTripTime: Duration = .milliseconds(100)
    /// The current estimate in bits per second.
    public private(set) var bitrate: Double
    /// How far the estimate may run ahead of the acknowledged bitrate (1.5: 50 % more), or `nil`
    /// for no limit: a forwarder whose receiver gets less than it could because of what the
    /// sources send, not of the link, keeps its estimate (docs/rooms.md "Simulcast").
    public var acknowledgedHeadroom: Double? = 1.5
    private var state: State = .increase
    private var lastUpdate: Duration?
    private var lastDecrease: Duration?
    /// Running mean and variance (in kb/s) of the acknowledged bitrate at over-use: the link capacity estimate.
    private var capacityMean: Double?
    private var capacityVariance = 0.4

    /// Creates a controller starting at `startBitrate` bits per second.
    public init(startBitrate: Double, minimumBitrate: Double = 30_000, maximumBitrate: Double = 5_000_000, beta: Double = 0.85) {
        self.bitrate = startBitrate
        self.minimumBitrate = minimumBitrate
        self.maximumBitrate = maximumBitrate
        self.beta = beta
    }

    /// The link capacity estimate in bits per second, once over-use has been seen.
    public var linkCapacity: Double? { capacityMean.map { $0 * 1000 } }

    /// Applies the detector's signal at `now`, given the acknowledged bitrate (bits/s) if known.
    @discardableResult
    public mutating func update(signal: OveruseDetector.Signal, acknowledgedBitrate: Double?, now: Duration) -> Double {
        let elapsed = lastUpdate.map { min((now - $0).seconds, 1.0) } ?? 0
        lastUpdate = now
        switch signal {
        case .overusing: state = .decrease
        case .underusing: state = .hold
        case .normal: if state == .hold || state == .decrease { state = .increase }
        }
        switch state {
        case .hold:
            break
        case .increase:
            if let acknowledged = acknowledgedBitrate, let capacity = capacityMean,
               acknowledged / 1000 > capacity + 3 * capacityStandardDeviation(capacity) {
                // The link got faster than remembered: forget the old capacity and probe multiplicatively.
                capacityMean = nil
            }
            if let capacity = capacityMean, abs(bitrate / 1000 - capacity) < 3 * capacityStandardDeviation(capacity) {
                let responseTime = roundTripTime.seconds + 0.1
                let perSecond = max(4_000, 1_200 * 8 / responseTime)
                bitrate += perSecond * elapsed
            } else {
                bitrate *= pow(1.08, elapsed)
            }
            if let acknowledged = acknowledgedBitrate, let headroom = acknowledgedHeadroom {
                bitrate = min(bitrate, max(headroom * acknowledged + 10_000, minimumBitrate))
            }
        case .decrease:
            // At most one decrease per RTT: the previous one has not taken effect before that.
            if lastDecrease.map({ now - $0 >= roundTripTime }) ?? true {
                let base = acknowledgedBitrate ?? bitrate
                var decreased = beta * base
                if decreased > bitrate, let capacity = linkCapacity { decreased = beta * capacity }
                bitrate = min(bitrate, decreased)
                if let acknowledged = acknowledgedBitrate { updateCapacity(acknowledged / 1000) }
                lastDecrease = now
            }
            state = .hold
        }
        bitrate = min(max(bitrate, minimumBitrate), maximumBitrate)
        return bitrate
    }

    /// Sets the estimate, as a loss-based or REMB limit below it does.
    public mutating func limit(to value: Double) {
        bitrate = min(bitrate, max(value, minimumBitrate))
    }

    private func capacityStandardDeviation(_ mean: Double) -> Double {
        (capacityVariance * mean).squareRoot()
    }

    private mutating func updateCapacity(_ sampleKbps: Double) {
        guard let mean = capacityMean else {
            capacityMean = sampleKbps
            return
        }
        let alpha = 0.05
        if abs(sampleKbps - mean) > 3 * capacityStandardDeviation(mean) {
            capacityMean = sampleKbps
            capacityVariance = 0.4
            return
        }
        let newMean = (1 - alpha) * mean + alpha * sampleKbps
        let normalized = max(newMean, 1)
        capacityVariance = (1 - alpha) * capacityVariance + alpha * (newMean - sampleKbps) * (newMean - sampleKbps) / normalized
        capacityVariance = min(max(capacityVariance, 0.4), 2.5)
        capacityMean = newMean
    }
}
