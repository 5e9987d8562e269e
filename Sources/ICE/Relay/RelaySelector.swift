import NIOCore

/// Orders candidate STUN/TURN servers by measured round trip (docs/mesh.md "Relay choice"):
/// a few STUN Binding requests to each, in parallel from one socket, bounded in count and
/// time. Full relays (their load report says no allocation is left) are not measured and not
/// returned; relays that do not answer come last, or are left out.
///
/// ```swift
/// let ranked = await RelaySelector().rank(candidates)
/// let best = ranked.prefix(2).map(\.candidate)   // hand these to the ICE agent
/// ```
public struct RelaySelector: Sendable {
    /// A server to choose from.
    public struct Candidate: Sendable, Equatable {
        /// Whatever the caller names it by (a node address, a URL).
        public var id: String
        /// Where to send Binding requests: the server's UDP STUN/TURN address.
        public var stun: SocketAddress
        /// The relay's last load report, if it sent one: allocations held and the most it holds.
        public var load: Int?
        public var capacity: Int?

        public init(id: String, stun: SocketAddress, load: Int? = nil, capacity: Int? = nil) {
            self.id = id
            self.stun = stun
            self.load = load
            self.capacity = capacity
        }

        /// True when the load report says the relay cannot take another allocation.
        public var isFull: Bool {
            guard let load, let capacity else { return false }
            return load >= capacity
        }
    }

    /// One candidate with its measurement.
    public struct Ranked: Sendable, Equatable {
        public var candidate: Candidate
        /// Median round trip of the answered requests; nil when none was answered.
        public var rtt: Duration?
        public var answered: Int
        public var sent: Int

        /// The round trip in milliseconds, for printing.
        public var rttMilliseconds: Double? {
            rtt.map { Double($0.components.seconds) * 1000 + Double($0.components.attoseconds) / 1e15 }
        }
    }

    /// Binding requests per candidate (rounds), and how long each round waits for answers.
    public var probes: Int
    public var timeout: Duration
    /// Keep candidates that never answered, at the end of the list.
    public var keepUnanswered: Bool

    public init(probes: Int = 3, timeout: Duration = .milliseconds(800), keepUnanswered: Bool = false) {
        self.probes = max(1, min(probes, 10))
        self.timeout = timeout
        self.keepUnanswered = keepUnanswered
    }

    /// The most time `rank` takes.
    public var timeLimit: Duration { timeout * probes }

    /// Measures every candidate that is not full and returns them fastest first (ties keep the
    /// given order).
    public func rank(_ candidates: [Candidate]) async -> [Ranked] {
        let open = candidates.filter { !$0.isFull }
        let results = await STUNProbe.udp(open.map(\.stun), count: probes, timeout: timeout)
        let measured = zip(open, results).map { candidate, result in
            Ranked(candidate: candidate, rtt: result.medianRTT, answered: result.rtts.count, sent: result.sent)
        }
        return Self.order(measured, keepUnanswered: keepUnanswered)
    }

    /// The ordering rule, apart from the measuring: answered ones by median round trip, then
    /// (if kept) the silent ones; the sort is stable.
    public static func order(_ measured: [Ranked], keepUnanswered: Bool) -> [Ranked] {
        let answered = measured.enumerated().filter { $0.element.rtt != nil }
            .sorted { ($0.element.rtt!, $0.offset) < ($1.element.rtt!, $1.offset) }.map(\.element)
        let silent = measured.filter { $0.rtt == nil }
        return answered + (keepUnanswered ? silent : [])
    }
}
