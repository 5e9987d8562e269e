import Foundation

/// The loss-based half of Google Congestion Control (draft-ietf-rmcat-gcc-02 §6), driven by the
/// fraction lost in RTCP receiver reports (RFC 3550 §6.4.1):
///
/// - below 2 % loss the rate may grow by 8 % per second;
/// - between 2 % and 10 % it holds;
/// - above 10 % it drops to `rate × (1 − 0.5 × loss)`, at most once per 300 ms + RTT.
public struct LossBasedBandwidthEstimator: Sendable {
    /// The current limit in bits per second.
    public private(set) var bitrate: Double
    /// The bounds, in bits per second.
    public var minimumBitrate: Double
    public var maximumBitrate: Double
    /// The round-trip time, which spaces decreases.
    public var roundTripTime: Duration = .milliseconds(100)
    /// The last fraction lost reported, 0–1.
    public private(set) var lastLoss = 0.0
    private var lastIncrease: Duration?
    private var lastDecrease: Duration?

    /// Creates an estimator at `startBitrate`.
    public init(startBitrate: Double, minimumBitrate: Double = 30_000, maximumBitrate: Double = 5_000_000) {
        self.bitrate = startBitrate
        self.minimumBitrate = minimumBitrate
        self.maximumBitrate = maximumBitrate
    }

    /// Applies a report with `fractionLost` (the RFC 3550 8-bit fixed-point value) received at `now`;
    /// `currentTarget` is the rate the sender actually runs at, from which an increase starts.
    @discardableResult
    public mutating func update(fractionLost: UInt8, currentTarget: Double, now: Duration) -> Double {
        let loss = Double(fractionLost) / 256
        lastLoss = loss
        if loss < 0.02 {
            let elapsed = lastIncrease.map { min((now - $0).seconds, 1.0) } ?? 1.0
            bitrate = max(bitrate, min(bitrate, currentTarget) * pow(1.08, elapsed) + 1_000 * elapsed)
            lastIncrease = now
        } else if loss > 0.10 {
            if lastDecrease.map({ now - $0 >= .milliseconds(300) + roundTripTime }) ?? true {
                bitrate = min(bitrate, currentTarget) * (1 - 0.5 * loss)
                lastDecrease = now
            }
            lastIncrease = now
        } else {
            lastIncrease = now
        }
        bitrate = min(max(bitrate, minimumBitrate), maximumBitrate)
        return bitrate
    }
}
