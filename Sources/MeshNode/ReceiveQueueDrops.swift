import Metrics

/// Received packets that a bounded receive queue dropped because its reader was that far behind
/// (docs/security.md: a peer that floods, or a process starved of CPU, costs at most the
/// bound; what does not fit is dropped as a full socket buffer drops it). Each number is a
/// total since the call (or the forwarder's session) began. A packet dropped here never
/// reaches the transport-cc feedback, so the sender reads it as loss on the path.
///
/// In `meshnode call --json` as `receiveQueueDrops` (docs/calls.md) and, for the forwarder's
/// sessions, on `/metrics` as `meshnode_media_receive_queue_drops_total{queue=…}`.
public struct ReceiveQueueDrops: Codable, Sendable, Equatable {
    /// The ICE agent's queue of received datagrams, between libnice's thread and the call.
    public var ice = 0
    /// Datagrams past ``ICEDatagramFeed/earlyBound`` that came before the DTLS-SRTP transport
    /// existed (``ICEDatagramFeed/droppedBeforeAttach``).
    public var path = 0
    /// The DTLS-SRTP transport's queue of decrypted packets.
    public var transport = 0
    /// The media engines' queues of packets for their media threads (none on the forwarder).
    public var engine = 0

    public init(ice: Int = 0, path: Int = 0, transport: Int = 0, engine: Int = 0) {
        self.ice = ice
        self.path = path
        self.transport = transport
        self.engine = engine
    }

    /// Every queue's drops added together.
    public var total: Int { ice + path + transport + engine }

    static func + (lhs: ReceiveQueueDrops, rhs: ReceiveQueueDrops) -> ReceiveQueueDrops {
        ReceiveQueueDrops(ice: lhs.ice + rhs.ice, path: lhs.path + rhs.path, transport: lhs.transport + rhs.transport,
                          engine: lhs.engine + rhs.engine)
    }
}

/// Adds one source's drop totals to the process's `meshnode_media_receive_queue_drops_total`
/// counters: each ``report(_:)`` adds what grew since the last one, so a source read every
/// second is counted once, whatever the cadence.
struct ReceiveQueueDropMeter: Sendable {
    private static let ice = Counter(label: "meshnode_media_receive_queue_drops_total", dimensions: [("queue", "ice")])
    private static let path = Counter(label: "meshnode_media_receive_queue_drops_total", dimensions: [("queue", "path")])
    private static let transport = Counter(label: "meshnode_media_receive_queue_drops_total", dimensions: [("queue", "transport")])
    private static let engine = Counter(label: "meshnode_media_receive_queue_drops_total", dimensions: [("queue", "engine")])
    private var reported = ReceiveQueueDrops()

    /// Counts what `totals` grew by since the last report. Totals never shrink; one that did
    /// (a queue replaced) is taken as the new base and counts nothing.
    mutating func report(_ totals: ReceiveQueueDrops) {
        func bump(_ counter: Counter, _ now: Int, _ before: Int) { if now > before { counter.increment(by: Int64(now - before)) } }
        bump(Self.ice, totals.ice, reported.ice)
        bump(Self.path, totals.path, reported.path)
        bump(Self.transport, totals.transport, reported.transport)
        bump(Self.engine, totals.engine, reported.engine)
        reported = totals
    }
}
