/// Keeps one misbehaving client from flooding the node's log: per key (a connection and a kind of
/// line, say), the first line of an interval is written and the rest are counted; the next line
/// written says how many were left out. Bounded: at most `maximumKeys` keys, forgotten once
/// their interval is over.
public struct LogLimiter: Sendable {
    public static let interval: Duration = .seconds(10)
    public static let maximumKeys = 4096

    private struct Slot {
        var since: ContinuousClock.Instant
        var suppressed: Int
    }

    private var slots: [String: Slot] = [:]
    /// Lines left out because the table was full, reported with the next line written.
    private var overflow = 0

    public init() {}

    /// Nil when the line is to be left out; otherwise how many like it were left out before.
    public mutating func allow(_ key: String, now: ContinuousClock.Instant) -> Int? {
        if var slot = slots[key] {
            guard now - slot.since >= Self.interval else {
                slot.suppressed += 1
                slots[key] = slot
                return nil
            }
            slots[key] = Slot(since: now, suppressed: 0)
            return slot.suppressed
        }
        if slots.count >= Self.maximumKeys {
            slots = slots.filter { now - $0.value.since < Self.interval }
            guard slots.count < Self.maximumKeys else {
                overflow += 1
                return nil
            }
        }
        slots[key] = Slot(since: now, suppressed: 0)
        defer { overflow = 0 }
        return overflow
    }
}

