/// A sliding-window bitrate: bytes counted over the last ``window``, as a sender's "acknowledged
/// bitrate" or a receiver's incoming rate.
public struct BitrateMeter: Sendable {
    /// How far back samples count.
    public let window: Duration
    private var samples: [(time: Duration, bytes: Int)] = []
    private var start = 0
    private var total = 0
    private var first: Duration?

    /// Creates a meter over `window`.
    public init(window: Duration = .seconds(1)) {
        self.window = window
    }

    /// Counts `bytes` at `time`; times must not go backwards by more than the window.
    public mutating func add(bytes: Int, at time: Duration) {
        if first == nil { first = time }
        samples.append((time, bytes))
        total += bytes
        trim(now: time)
    }

    /// The rate in bits per second at `now`, or `nil` before half a window of samples exists.
    public mutating func bitsPerSecond(now: Duration) -> Double? {
        trim(now: now)
        guard let first, now - first >= window / 2 else { return nil }
        let span = min(window, now - first)
        return Double(total * 8) / span.seconds
    }

    private mutating func trim(now: Duration) {
        while start < samples.count, now - samples[start].time > window {
            total -= samples[start].bytes
            start += 1
        }
        if start > 1024, start * 2 > samples.count {
            samples.removeFirst(start)
            start = 0
        }
    }
}
