import Metrics

/// The TURN server's counters (exported by the node at `/metrics`).
///
/// Per-packet counts are summed on each event loop and added here in batches, so the hot path
/// touches no shared memory.
struct TURNMetrics: Sendable {
    let allocationsCreated = Counter(label: "meshnode_turn_allocations_total")
    let allocationsActive = Gauge(label: "meshnode_turn_allocations_active")
    let packetsToPeer = Counter(label: "meshnode_turn_relayed_packets_total", dimensions: [("direction", "to_peer")])
    let packetsToClient = Counter(label: "meshnode_turn_relayed_packets_total", dimensions: [("direction", "to_client")])
    let bytesToPeer = Counter(label: "meshnode_turn_relayed_bytes_total", dimensions: [("direction", "to_peer")])
    let bytesToClient = Counter(label: "meshnode_turn_relayed_bytes_total", dimensions: [("direction", "to_client")])
    let droppedOverBandwidth = Counter(label: "meshnode_turn_dropped_packets_total", dimensions: [("reason", "bandwidth")])
    let droppedNoPermission = Counter(label: "meshnode_turn_dropped_packets_total", dimensions: [("reason", "no_permission")])
    let droppedForbiddenPeer = Counter(label: "meshnode_turn_dropped_packets_total", dimensions: [("reason", "forbidden_peer")])
    /// Bytes an RFC 6062 relay read from a client's data connection (to_peer) or from a peer
    /// connection (to_client) and handed to the other connection of the pair.
    let tcpBytesToPeer = Counter(label: "meshnode_turn_tcp_relayed_bytes_total", dimensions: [("direction", "to_peer")])
    let tcpBytesToClient = Counter(label: "meshnode_turn_tcp_relayed_bytes_total", dimensions: [("direction", "to_client")])
    /// Relayed datagrams that left in segmented writes (UDP GSO, ``DatagramOutbox``).
    let segmentedDatagrams = Counter(label: "meshnode_turn_gso_datagrams_total")
    /// Allocations the relay engines moved to the first engine (moderate load) or back to their
    /// own (``RelayEngineGroup``).
    let engineMovesToPrimary = Counter(label: "meshnode_turn_engine_moves_total", dimensions: [("to", "primary")])
    let engineMovesHome = Counter(label: "meshnode_turn_engine_moves_total", dimensions: [("to", "home")])
    /// Allocations a relay engine watches now, by engine.
    func engineAllocations(_ engine: Int) -> Gauge {
        Gauge(label: "meshnode_turn_engine_allocations", dimensions: [("engine", "\(engine)")])
    }
    let authFailures = Counter(label: "meshnode_turn_auth_failures_total")
    let bindingRequests = Counter(label: "meshnode_stun_binding_requests_total")
    let malformed = Counter(label: "meshnode_turn_malformed_total")
    /// TCP and TLS connections open now.
    let streamConnections = Gauge(label: "meshnode_turn_connections_active")
    /// TCP and TLS connections closed because they held no allocation for the idle timeout.
    let idleConnectionsClosed = Counter(label: "meshnode_turn_idle_connections_closed_total")

    /// A refusal by reason: forbidden_peer, quota, wrong_transport, stale_nonce, mismatch,
    /// connections, connections_per_source, connection_budget, …
    func refused(_ reason: String) {
        Counter(label: "meshnode_turn_refusals_total", dimensions: [("reason", reason)]).increment()
    }
}

/// Per-loop tallies flushed into ``TURNMetrics`` periodically.
struct RelayTally {
    var packetsToPeer = 0
    var bytesToPeer = 0
    var packetsToClient = 0
    var bytesToClient = 0
    var droppedOverBandwidth = 0
    var droppedNoPermission = 0
    var droppedForbiddenPeer = 0
    var segmentedDatagrams = 0
    var tcpBytesToPeer = 0
    var tcpBytesToClient = 0

    mutating func flush(into metrics: TURNMetrics) {
        if packetsToPeer > 0 { metrics.packetsToPeer.increment(by: packetsToPeer); metrics.bytesToPeer.increment(by: bytesToPeer) }
        if packetsToClient > 0 { metrics.packetsToClient.increment(by: packetsToClient); metrics.bytesToClient.increment(by: bytesToClient) }
        if droppedOverBandwidth > 0 { metrics.droppedOverBandwidth.increment(by: droppedOverBandwidth) }
        if droppedNoPermission > 0 { metrics.droppedNoPermission.increment(by: droppedNoPermission) }
        if droppedForbiddenPeer > 0 { metrics.droppedForbiddenPeer.increment(by: droppedForbiddenPeer) }
        if segmentedDatagrams > 0 { metrics.segmentedDatagrams.increment(by: segmentedDatagrams) }
        if tcpBytesToPeer > 0 { metrics.tcpBytesToPeer.increment(by: tcpBytesToPeer) }
        if tcpBytesToClient > 0 { metrics.tcpBytesToClient.increment(by: tcpBytesToClient) }
        self = RelayTally()
    }
}
