import Synchronization

/// Time that moves only when a test moves it, read as `ContinuousClock` instants. A type that
/// takes its clock as a function (the signaling hub's liveness and rate limits) gets `{ clock.now }`;
/// the test then calls ``advance(by:)`` instead of sleeping, so what it checks does not depend on
/// how busy the machine is.
public final class ManualClock: Sendable {
    private let start: ContinuousClock.Instant
    private let elapsed = Mutex(Duration.zero)

    public init(start: ContinuousClock.Instant = .now) {
        self.start = start
    }

    /// The current instant: `start` plus every advance so far.
    public var now: ContinuousClock.Instant { start + elapsed.withLock { $0 } }

    public func advance(by duration: Duration) {
        elapsed.withLock { $0 += duration }
    }
}
