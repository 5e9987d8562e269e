import Logging

/// Keeps one misbehaving connection from flooding the node's log: per connection and kind of
/// line, the first line of an interval is written and the rest are counted; the next line
/// written says how many were left out. Bounded: at most `maximumKeys` keys, forgotten once
/// their interval is over.
struct LogLimiter: Sendable {
    static let interval: Duration = .seconds(10)
    static let maximumKeys = 4096

    private struct Slot {
        var since: ContinuousClock.Instant
        var suppressed: Int
    }

    private var slots: [String: Slot] = [:]
    /// Lines left out because the table was full, reported with the next line written.
    private var overflow = 0

    /// Nil when the line is to be left out; otherwise how many like it were left out before.
    mutating func allow(_ key: String, now: ContinuousClock.Instant) -> Int? {
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

extension SignalingHub {
    /// Logs a line about something a connection did, at most once per `LogLimiter.interval` for
    /// that connection and kind, with the number of lines left out since the last one.
    /// `connection` nil: one budget for the kind across all connections (for what anyone can
    /// cause by opening connection after connection).
    func logLimited(_ level: Logger.Level, _ message: Logger.Message, kind: String, connection: Int?, metadata: Logger.Metadata = [:]) {
        guard let suppressed = logLimits.allow("\(connection.map(String.init) ?? "*") \(kind)", now: now()) else { return }
        var metadata = metadata
        if let connection { metadata["connection"] = "\(connection)" }
        if suppressed > 0 { metadata["suppressed"] = "\(suppressed)" }
        logger.log(level: level, message, metadata: metadata)
    }
}
