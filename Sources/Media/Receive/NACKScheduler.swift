import RTP
import Codecs
/// Decides when to ask for each missing RTP packet again (RFC 4585 §6.2.1 generic NACK), and when to
/// give up on it.
///
/// Sans-IO: the caller reports which sequence numbers are missing and asks what is due at a time it
/// chooses. A gap is first given ``Configuration/reorderWindow`` to fill itself, since packets that
/// are merely reordered arrive a few milliseconds late (RFC 4585 §3.1 warns against feedback
/// implosion). Each retry then waits about one round trip, the time a retransmission needs to come
/// back, and after ``Configuration/maxRetries`` requests the packet counts as lost for good.
public struct NACKScheduler: Sendable {
    /// Timing and limits.
    public struct Configuration: Sendable {
        /// How long a gap may stay open before the first NACK, to let reordered packets arrive.
        public var reorderWindow: Duration
        /// How many NACKs are sent for one packet before it is given up.
        public var maxRetries: Int
        /// The shortest wait between two NACKs for the same packet, whatever the RTT says.
        public var minRetryInterval: Duration
        /// How much of a round trip to wait before asking again (1.0 = exactly one RTT).
        public var rttMultiplier: Double
        /// At most this many sequence numbers are tracked; beyond it the oldest are dropped as lost.
        public var maxTracked: Int

        /// Creates a configuration; the defaults follow libwebrtc's NACK module (10 retries, one RTT apart).
        public init(reorderWindow: Duration = .milliseconds(10), maxRetries: Int = 10, minRetryInterval: Duration = .milliseconds(20),
                    rttMultiplier: Double = 1.2, maxTracked: Int = 1000) {
            self.reorderWindow = reorderWindow
            self.maxRetries = maxRetries
            self.minRetryInterval = minRetryInterval
            self.rttMultiplier = rttMultiplier
            self.maxTracked = maxTracked
        }
    }

    /// What is due at a given time.
    public struct Due: Hashable, Sendable {
        /// Sequence numbers to request now, in ascending order.
        public var nack: [UInt16]
        /// Sequence numbers given up on now: requested ``Configuration/maxRetries`` times without an answer.
        public var expired: [UInt16]
    }

    private struct Entry: Sendable {
        var detected: Duration
        var lastSent: Duration?
        var retries: Int
    }

    /// The settings in force.
    public var configuration: Configuration
    /// The round-trip time retries are timed by; update it from RTCP (RFC 3550 §6.4.1, LSR/DLSR).
    public var roundTripTime: Duration
    private var entries: [UInt16: Entry] = [:]
    /// Sequence numbers given up on, remembered so that a gap that stays open is not requested again.
    private var abandoned: Set<UInt16> = []

    /// NACK requests sent, counting each sequence number once per request.
    public private(set) var requestsSent = 0
    /// Packets that arrived after being requested at least once.
    public private(set) var recovered = 0
    /// Packets given up on.
    public private(set) var expiredCount = 0

    /// Creates a scheduler.
    public init(configuration: Configuration = Configuration(), roundTripTime: Duration = .milliseconds(100)) {
        self.configuration = configuration
        self.roundTripTime = roundTripTime
    }

    /// Sequence numbers being tracked (missing and not given up on).
    public var tracked: Int { entries.count }

    /// Replaces the set of missing sequence numbers: new ones start their reorder window at `now`;
    /// tracked ones that are no longer missing (filled, or made irrelevant by a keyframe) are forgotten.
    public mutating func update(missing: [UInt16], now: Duration) {
        let current = Set(missing)
        for sequence in entries.keys where !current.contains(sequence) { entries[sequence] = nil }
        abandoned.formIntersection(current)
        for sequence in missing where entries[sequence] == nil && !abandoned.contains(sequence) {
            entries[sequence] = Entry(detected: now, lastSent: nil, retries: 0)
        }
        if entries.count > configuration.maxTracked {
            let excess = entries.sorted { $0.value.detected < $1.value.detected }.prefix(entries.count - configuration.maxTracked)
            for (sequence, _) in excess {
                entries[sequence] = nil
                abandoned.insert(sequence)
                expiredCount += 1
            }
        }
    }

    /// Notes that `sequence` arrived. Returns whether it had been requested, so it counts as recovered by NACK.
    @discardableResult
    public mutating func received(_ sequence: UInt16) -> Bool {
        guard let entry = entries.removeValue(forKey: sequence) else { return false }
        if entry.retries > 0 {
            recovered += 1
            return true
        }
        return false
    }

    /// The interval between two requests for one packet at the current RTT.
    public var retryInterval: Duration {
        max(configuration.minRetryInterval, roundTripTime * configuration.rttMultiplier)
    }

    /// What to request and what to give up on at `now`. Requests returned here count as sent.
    public mutating func due(now: Duration) -> Due {
        var nack: [UInt16] = []
        var expired: [UInt16] = []
        let interval = retryInterval
        for (sequence, entry) in entries {
            if let lastSent = entry.lastSent {
                guard now - lastSent >= interval else { continue }
                if entry.retries >= configuration.maxRetries {
                    expired.append(sequence)
                    continue
                }
            } else if now - entry.detected < configuration.reorderWindow {
                continue
            }
            entries[sequence]?.lastSent = now
            entries[sequence]?.retries += 1
            nack.append(sequence)
        }
        for sequence in expired {
            entries[sequence] = nil
            abandoned.insert(sequence)
        }
        expiredCount += expired.count
        requestsSent += nack.count
        return Due(nack: Self.ascending(nack), expired: Self.ascending(expired))
    }

    /// Sequence numbers in ascending order across the 16-bit wrap: the sorted list is rotated to start
    /// after its largest circular gap, so that 65535 comes before 0.
    static func ascending(_ sequences: [UInt16]) -> [UInt16] {
        let sorted = sequences.sorted()
        guard sorted.count > 1 else { return sorted }
        var start = 0
        var largestGap = Int(sorted[0]) + 65_536 - Int(sorted[sorted.count - 1])
        for index in 1..<sorted.count where Int(sorted[index]) - Int(sorted[index - 1]) > largestGap {
            largestGap = Int(sorted[index]) - Int(sorted[index - 1])
            start = index
        }
        return Array(sorted[start...] + sorted[..<start])
    }

    /// The earliest time something becomes due, for a caller that sets a timer; `nil` when nothing is tracked.
    public var nextDeadline: Duration? {
        let interval = retryInterval
        return entries.values.map { entry in
            entry.lastSent.map { $0 + interval } ?? entry.detected + configuration.reorderWindow
        }.min()
    }
}
