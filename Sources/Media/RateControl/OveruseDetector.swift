/// The over-use detector of Google Congestion Control (draft-ietf-rmcat-gcc-02 §5.4): it compares
/// the delay trend with an adaptive threshold and reports over-use only when the trend has stayed
/// above it for ``overuseTime`` and is still rising; the threshold follows the trend's magnitude
/// (fast up, slow down) so that the detector is not starved by competing loss-based flows (§5.4).
public struct OveruseDetector: Sendable {
    /// What the detector concludes.
    public enum Signal: Hashable, Sendable {
        /// The queue is growing: send less.
        case overusing
        /// The queue is steady: send more.
        case normal
        /// The queue is draining: hold the rate until it is empty.
        case underusing
    }

    /// How long the trend must exceed the threshold.
    public let overuseTime: Duration
    /// Threshold adaptation gains while the trend is above and below it (per ms).
    public let upGain: Double
    public let downGain: Double
    /// The threshold's bounds.
    public let thresholdRange: ClosedRange<Double>

    /// The current threshold.
    public private(set) var threshold = 12.5
    /// The current conclusion.
    public private(set) var signal: Signal = .normal
    private var timeOverusing: Double = -1
    private var overuseCount = 0
    private var previousTrend = 0.0
    private var lastThresholdUpdate: Duration?

    /// Creates a detector with libwebrtc's gains (k_u = 0.0087, k_d = 0.039).
    public init(overuseTime: Duration = .milliseconds(10), upGain: Double = 0.0087, downGain: Double = 0.039, thresholdRange: ClosedRange<Double> = 6...600) {
        self.overuseTime = overuseTime
        self.upGain = upGain
        self.downGain = downGain
        self.thresholdRange = thresholdRange
    }

    /// Classifies a modified trend from the ``TrendlineEstimator``; `sendDelta` is the time the delta
    /// spans, `deltaCount` how many deltas the trend is built on.
    @discardableResult
    public mutating func detect(trend: Double, sendDelta: Duration, deltaCount: Int, now: Duration) -> Signal {
        guard deltaCount >= 2 else { return signal }
        if trend > threshold {
            timeOverusing = timeOverusing < 0 ? sendDelta.milliseconds / 2 : timeOverusing + sendDelta.milliseconds
            overuseCount += 1
            if timeOverusing > overuseTime.milliseconds, overuseCount > 1, trend >= previousTrend {
                timeOverusing = 0
                overuseCount = 0
                signal = .overusing
            }
        } else if trend < -threshold {
            timeOverusing = -1
            overuseCount = 0
            signal = .underusing
        } else {
            timeOverusing = -1
            overuseCount = 0
            signal = .normal
        }
        previousTrend = trend
        adaptThreshold(trend: trend, now: now)
        return signal
    }

    private mutating func adaptThreshold(trend: Double, now: Duration) {
        guard let last = lastThresholdUpdate else {
            lastThresholdUpdate = now
            return
        }
        let magnitude = abs(trend)
        // A spike far above the threshold (a route change, a burst) must not drag the threshold up.
        if magnitude > threshold + 15 {
            lastThresholdUpdate = now
            return
        }
        let gain = magnitude < threshold ? downGain : upGain
        let elapsed = min((now - last).milliseconds, 100)
        threshold += gain * (magnitude - threshold) * elapsed
        threshold = min(max(threshold, thresholdRange.lowerBound), thresholdRange.upperBound)
        lastThresholdUpdate = now
    }
}
