import Codecs
/// A one-way network path for tests and the media loop, sans-IO: a bottleneck with a capacity and
/// a drop-tail queue, a propagation delay, random loss, and random extra delay that reorders packets.
///
/// ``send(_:size:now:)`` puts a packet on the link; ``receive(now:)`` returns, in arrival order, the
/// packets that have arrived by `now`. Nothing happens between calls: time is whatever the caller says.
public struct SimulatedLink<Payload: Sendable>: Sendable {
    /// The path's properties; they may change while packets are in flight (a capacity step, say).
    public struct Configuration: Sendable {
        /// Bottleneck capacity in bits per second; `nil` for unlimited.
        public var capacityBitsPerSecond: Double?
        /// The most bytes that may wait in the bottleneck queue; more are dropped (drop tail).
        public var queueLimitBytes: Int
        /// One-way propagation delay.
        public var delay: Duration
        /// Probability that a packet is lost at random, 0–1.
        public var lossProbability: Double
        /// Probability that a packet is held back by up to ``reorderDelay`` so that later ones overtake it.
        public var reorderProbability: Double
        /// The most extra delay of a reordered packet.
        public var reorderDelay: Duration

        /// Creates a path; by default unlimited, 20 ms, lossless and in order.
        public init(capacityBitsPerSecond: Double? = nil, queueLimitBytes: Int = 64_000, delay: Duration = .milliseconds(20),
                    lossProbability: Double = 0, reorderProbability: Double = 0, reorderDelay: Duration = .milliseconds(15)) {
            self.capacityBitsPerSecond = capacityBitsPerSecond
            self.queueLimitBytes = queueLimitBytes
            self.delay = delay
            self.lossProbability = lossProbability
            self.reorderProbability = reorderProbability
            self.reorderDelay = reorderDelay
        }
    }

    /// Counters.
    public struct Counters: Hashable, Sendable {
        /// Packets put on the link.
        public var sent = 0
        /// Packets that arrived.
        public var delivered = 0
        /// Packets lost at random.
        public var lostAtRandom = 0
        /// Packets dropped because the bottleneck queue was full.
        public var droppedByQueue = 0
        /// Packets given extra delay.
        public var reordered = 0
        /// Bytes that arrived.
        public var bytesDelivered = 0
    }

    private struct InFlight: Sendable {
        var arrival: Duration
        var order: Int
        var payload: Payload
        var size: Int
    }

    /// The path's properties.
    public var configuration: Configuration
    /// Counters so far.
    public private(set) var counters = Counters()
    private var random: SplitMixRandom
    private var inFlight: [InFlight] = []
    private var bottleneckFree: Duration = .zero
    private var sendOrder = 0
    /// Departures from the bottleneck still queued, to know the queue's size in bytes.
    private var queued: [(departure: Duration, size: Int)] = []

    /// Creates a link whose random choices come from `seed`, so a run can be repeated exactly.
    public init(configuration: Configuration, seed: UInt64 = 1) {
        self.configuration = configuration
        self.random = SplitMixRandom(seed: seed)
    }

    /// Bytes waiting in the bottleneck queue at `now`.
    public mutating func queuedBytes(now: Duration) -> Int {
        queued.removeAll { $0.departure <= now }
        return queued.reduce(0) { $0 + $1.size }
    }

    /// Puts a packet of `size` bytes on the link at `now`.
    public mutating func send(_ payload: Payload, size: Int, now: Duration) {
        counters.sent += 1
        if configuration.lossProbability > 0, Double.random(in: 0..<1, using: &random) < configuration.lossProbability {
            counters.lostAtRandom += 1
            return
        }
        var departure = now
        if let capacity = configuration.capacityBitsPerSecond, capacity > 0 {
            if queuedBytes(now: now) + size > configuration.queueLimitBytes {
                counters.droppedByQueue += 1
                return
            }
            let start = max(now, bottleneckFree)
            departure = start + .seconds(Double(size * 8) / capacity)
            bottleneckFree = departure
            queued.append((departure, size))
        }
        var arrival = departure + configuration.delay
        if configuration.reorderProbability > 0, Double.random(in: 0..<1, using: &random) < configuration.reorderProbability {
            counters.reordered += 1
            arrival += .seconds(Double.random(in: 0...1, using: &random) * configuration.reorderDelay.seconds)
        }
        sendOrder += 1
        inFlight.append(InFlight(arrival: arrival, order: sendOrder, payload: payload, size: size))
    }

    /// The packets that have arrived by `now`, each with its arrival time, in arrival order.
    public mutating func receive(now: Duration) -> [(payload: Payload, arrival: Duration)] {
        guard inFlight.contains(where: { $0.arrival <= now }) else { return [] }
        let arrived = inFlight.filter { $0.arrival <= now }.sorted { ($0.arrival, $0.order) < ($1.arrival, $1.order) }
        inFlight.removeAll { $0.arrival <= now }
        counters.delivered += arrived.count
        counters.bytesDelivered += arrived.reduce(0) { $0 + $1.size }
        return arrived.map { ($0.payload, $0.arrival) }
    }

    /// When the next packet arrives, for a caller that sets a timer.
    public var nextArrival: Duration? { inFlight.map(\.arrival).min() }
}

/// A small deterministic random number generator (SplitMix64), so simulated runs repeat exactly.
public struct SplitMixRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// Creates a generator from a seed.
    public init(seed: UInt64) {
        state = seed
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
