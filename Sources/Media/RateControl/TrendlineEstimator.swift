/// The trendline filter of Google Congestion Control: it accumulates the one-way delay variation
/// of packet groups, smooths it, and fits a line through the last ``windowSize`` points by least
/// squares; the slope says whether the bottleneck queue is growing (positive), steady or draining.
///
/// The slope is scaled by the number of deltas seen (up to 60) and a gain of 4 before it is
/// compared with the ``OveruseDetector``'s threshold, as libwebrtc does.
public struct TrendlineEstimator: Sendable {
    /// Points in the regression window.
    public let windowSize: Int
    /// Exponential smoothing of the accumulated delay (0.9 keeps 90 % of the old value).
    public let smoothing: Double
    /// Gain applied to the slope.
    public let gain: Double

    private var points: [(x: Double, y: Double)] = []
    private var accumulatedDelay = 0.0
    private var smoothedDelay = 0.0
    private var firstArrival: Duration?
    /// Deltas seen, capped at 1000.
    public private(set) var deltaCount = 0
    /// The latest slope of the fitted line (ms of queueing delay per ms), 0 until the window is full.
    public private(set) var slope = 0.0

    /// Creates a filter with GCC's defaults.
    public init(windowSize: Int = 20, smoothing: Double = 0.9, gain: Double = 4) {
        self.windowSize = windowSize
        self.smoothing = smoothing
        self.gain = gain
    }

    /// Adds one group delta and returns the modified trend to compare with the detector's threshold.
    public mutating func update(_ delta: PacketGroupDeltas.Delta) -> Double {
        let variation = delta.arrivalDelta.milliseconds - delta.sendDelta.milliseconds
        deltaCount = min(deltaCount + 1, 1000)
        accumulatedDelay += variation
        smoothedDelay = smoothing * smoothedDelay + (1 - smoothing) * accumulatedDelay
        let origin = firstArrival ?? delta.arrivalTime
        firstArrival = origin
        points.append(((delta.arrivalTime - origin).milliseconds, smoothedDelay))
        if points.count > windowSize { points.removeFirst(points.count - windowSize) }
        if points.count == windowSize, let fitted = Self.leastSquaresSlope(points) { slope = fitted }
        return Double(min(deltaCount, 60)) * slope * gain
    }

    static func leastSquaresSlope(_ points: [(x: Double, y: Double)]) -> Double? {
        let meanX = points.reduce(0) { $0 + $1.x } / Double(points.count)
        let meanY = points.reduce(0) { $0 + $1.y } / Double(points.count)
        var numerator = 0.0, denominator = 0.0
        for point in points {
            numerator += (point.x - meanX) * (point.y - meanY)
            denominator += (point.x - meanX) * (point.x - meanX)
        }
        return denominator == 0 ? nil : numerator / denominator
    }
}
