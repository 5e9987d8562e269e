import Logging
import ServiceLifecycle
import Signaling

/// The first step of a graceful stop (SIGTERM, SIGINT): closes every signaling connection with
/// 1012 Service Restart (``ConnectionDrain``) and waits, at most `limit`, until they are gone, so
/// the messages they carried are handled and stored. It runs as the last service of the node's
/// group, which ServiceLifecycle stops first (after telling the mesh this node leaves); then the
/// HTTP server stops accepting and the store closes.
struct NodeDrain: Service {
    let drain: ConnectionDrain
    /// Told first, so that a load balancer polling `/healthz` (503 now) sends no one new here.
    let readiness: NodeReadiness
    /// Run before the drain: the mesh is told this node leaves while the links other nodes
    /// dialled to it, which the drain closes, still carry the record.
    let beforeDrain: @Sendable () async -> Void
    let limit: Duration
    let logger: Logger

    /// The bound of the drain; with the rest of the shutdown it stays below the unit's 20 s.
    static let defaultLimit: Duration = .seconds(5)

    func run() async throws {
        try? await gracefulShutdown()
        readiness.stopping()
        await beforeDrain()
        let open = drain.openConnections
        logger.notice("stopping: closing \(open) signaling connections with 1012 (service restart)")
        drain.start()
        let deadline = ContinuousClock.now + limit
        // Bounded by the deadline; a connection whose client never answers the close is cut by
        // the WebSocket close timeout (2 s).
        while drain.openConnections > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}
