import NIOCore

/// A byte budget that refills at a fixed rate: the per-allocation bandwidth cap.
struct TokenBucket {
    let bytesPerSecond: Double
    let capacity: Double
    private var tokens: Double
    private var last: NIODeadline

    init(bitsPerSecond: Int, now: NIODeadline = .now()) {
        bytesPerSecond = Double(bitsPerSecond) / 8
        // Half a second of burst: enough for a video keyframe, small enough to bound abuse.
        capacity = max(bytesPerSecond / 2, 3_000)
        tokens = capacity
        last = now
    }

    /// Spends `bytes` if the budget allows; false means the packet is dropped.
    mutating func take(_ bytes: Int, now: NIODeadline = .now()) -> Bool {
        let elapsed = Double((now - last).nanoseconds) / 1e9
        last = now
        tokens = min(capacity, tokens + elapsed * bytesPerSecond)
        guard tokens >= Double(bytes) else { return false }
        tokens -= Double(bytes)
        return true
    }
}
