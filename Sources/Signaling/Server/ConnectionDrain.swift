import Synchronization

/// A graceful restart of the node (docs/protocol.md "Liveness"): once started, every signaling
/// connection is closed with 1012 Service Restart (IANA WebSocket Close Code Number Registry,
/// RFC 6455 §11.7) and a new one is closed the same way at once, so clients reconnect on their
/// usual schedule (every 5 s plus jitter), to this node once it is back. A connection ends only
/// after the message it was handling, so a chat message being stored is stored.
public final class ConnectionDrain: Sendable {
    /// The close code: 1012 Service Restart.
    public static let serviceRestart = 1012
    /// The close reason a client sees.
    public static let reason = "node restarting; reconnect"
    /// How long a client has to answer the close (RFC 6455 §7.1.1: the server closes the TCP
    /// connection after the handshake); then the connection is cut.
    public static let grace: Duration = .seconds(2)

    private struct State {
        var draining = false
        var open = 0
        var nextWaiter = 0
        /// One per open connection at most: bounded by `max-connections`.
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        /// The same for connections served by a channel handler (``whenDraining(_:)``).
        var actions: [Int: @Sendable () -> Void] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    /// Whether the drain has started.
    public var isDraining: Bool { state.withLock { $0.draining } }

    /// Signaling connections still open.
    public var openConnections: Int { state.withLock { $0.open } }

    /// Starts the drain: every connection closes with 1012.
    public func start() {
        let (waiters, actions) = state.withLock { state in
            state.draining = true
            defer {
                state.waiters.removeAll()
                state.actions.removeAll()
            }
            return (Array(state.waiters.values), Array(state.actions.values))
        }
        for waiter in waiters { waiter.resume() }
        for action in actions { action() }
    }

    /// Calls `action` once when the drain starts: at once (and returns nil) when it has
    /// already; otherwise returns a token for ``forget(_:)``, which a connection that closes
    /// first must call.
    func whenDraining(_ action: @escaping @Sendable () -> Void) -> Int? {
        let token: Int? = state.withLock { state in
            guard !state.draining else { return nil }
            state.nextWaiter += 1
            state.actions[state.nextWaiter] = action
            return state.nextWaiter
        }
        if token == nil { action() }
        return token
    }

    /// Forgets the action registered under `token`.
    func forget(_ token: Int) {
        _ = state.withLock { $0.actions.removeValue(forKey: token) }
    }

    func opened() { state.withLock { $0.open += 1 } }
    func closed() { state.withLock { $0.open -= 1 } }

    /// Returns once the drain starts, or when the calling task is cancelled.
    func untilDraining() async {
        let id: Int? = state.withLock { state in
            guard !state.draining else { return nil }
            state.nextWaiter += 1
            return state.nextWaiter
        }
        guard let id else { return }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                // Cancelled before the continuation was stored: the handler found nothing to resume.
                let now = state.withLock { state -> Bool in
                    if state.draining || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }
}
