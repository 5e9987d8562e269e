import Synchronization

/// What both ways into the hub share about one connection (issue 17): when it was last heard,
/// its frame budget, and the name it chats as once logged in. The hub's actor reads and
/// writes it for every frame it takes; the chat fast path (SignalingHub+FastChat.swift) reads
/// and charges it on the connection's event loop, without a turn of the actor. A lock, not the
/// actor: both sides must see one rate limit and one liveness clock, and a frame must not wait
/// for the actor to learn them.
final class ConnectionGate: Sendable {
    private struct State {
        var lastSeen: ContinuousClock.Instant
        var limiter: RateLimiter
        /// Set once a client logged in (not a node link, not a device still claiming), cleared
        /// when the hub drops the session: a frame on the fast path chats as this name.
        var chatName: String?
    }

    private let state: Mutex<State>

    init(limiter: RateLimiter, now: ContinuousClock.Instant) {
        state = Mutex(State(lastSeen: now, limiter: limiter, chatName: nil))
    }

    /// A frame arrived at `now`: the connection is alive; true when its rate limit lets the
    /// frame through (docs/protocol.md "Limits"), false when the frame is to be dropped.
    func admit(now: ContinuousClock.Instant) -> Bool {
        state.withLock { state in
            state.lastSeen = now
            return state.limiter.allow(now: now)
        }
    }

    /// A frame that the rate limit does not count arrived (a binary frame).
    func touch(now: ContinuousClock.Instant) {
        state.withLock { $0.lastSeen = now }
    }

    /// When the last frame arrived (the hub's sweep closes silent connections).
    var lastSeen: ContinuousClock.Instant { state.withLock { $0.lastSeen } }

    /// Replaces the frame budget (a node link gets a bigger one).
    func setLimiter(_ limiter: RateLimiter) {
        state.withLock { $0.limiter = limiter }
    }

    /// The name this connection chats as on the fast path; nil before login and after the
    /// session ended.
    var chatName: String? {
        get { state.withLock { $0.chatName } }
        set { state.withLock { $0.chatName = newValue } }
    }
}
