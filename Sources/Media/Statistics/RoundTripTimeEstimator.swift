import RTP
/// The round-trip time a sender derives from reception reports (RFC 3550 §6.4.1): the report's
/// arrival time minus the LSR it echoes minus the DLSR the receiver held it, all in the compact
/// 32-bit NTP form (16.16 fixed-point seconds), smoothed like TCP's SRTT (RFC 6298 §2, α = 1/8).
public struct RoundTripTimeEstimator: Sendable {
    /// The smoothed round-trip time, `nil` before the first report that echoes a sender report.
    public private(set) var smoothed: Duration?
    /// The latest sample.
    public private(set) var latest: Duration?

    /// Creates an estimator with no samples.
    public init() {}

    /// The compact NTP form (middle 32 bits, RFC 3550 §4) of a time on the caller's clock.
    public static func compactNTP(_ time: Duration) -> UInt32 {
        UInt32(truncatingIfNeeded: ntp(time) >> 16)
    }

    /// The 64-bit NTP form (32.32 fixed-point seconds) of a time on the caller's clock.
    public static func ntp(_ time: Duration) -> UInt64 {
        let (seconds, attoseconds) = time.components
        let fraction = UInt64(Double(attoseconds) * 1e-18 * 4_294_967_296.0)
        return UInt64(truncatingIfNeeded: seconds) << 32 | min(fraction, 0xFFFF_FFFF)
    }

    /// Takes a report block that arrived at `arrival` (on the clock the sender reports were stamped
    /// with) and returns the new sample, or `nil` when the block echoes no sender report.
    @discardableResult
    public mutating func update(with block: RTCPReportBlock, arrival: Duration) -> Duration? {
        guard block.lastSenderReport != 0 else { return nil }
        let elapsed = Self.compactNTP(arrival) &- block.lastSenderReport &- block.delaySinceLastSenderReport
        // A negative result (clock trouble or a bogus DLSR) wraps to a huge value: ignore it.
        guard elapsed < 60 << 16 else { return nil }
        let sample = Duration.seconds(Double(elapsed) / 65_536)
        latest = sample
        if let smoothed {
            self.smoothed = smoothed * 0.875 + sample * 0.125
        } else {
            smoothed = sample
        }
        return sample
    }
}
