import Foundation
import Hummingbird
import HummingbirdWSClient
import Logging

/// A peer's connection to its home node (docs/protocol.md): logs in with its identity, keeps
/// the connection alive with ping/pong, reconnects every `reconnectDelay` (plus jitter) until it
/// succeeds, then resumes: it logs in again, renews its presence subscriptions and resends
/// every chat message the node has not acknowledged (same ids, so nothing is delivered twice).
public actor SignalingClient {
    /// Everything that happens, in order. One consumer.
    public nonisolated let events: AsyncStream<SignalingEvent>
    let eventSink: AsyncStream<SignalingEvent>.Continuation

    public nonisolated let url: String
    /// Every URL of the node: `url` first, then the other members of a cluster
    /// (docs/cluster.md): those given, then those a `welcome` listed (``learnMembers(_:)``).
    /// A lost connection goes on at the next one at once.
    public internal(set) var urls: [String]
    /// How many of `urls` were given (the rest were learnt from `welcome`).
    let givenURLs: Int
    /// The index in `urls` of the member dialled now, and the attempts since the last login.
    var current = 0
    var attemptsSinceLogin = 0
    public nonisolated let name: String
    public nonisolated let identity: Identity
    public nonisolated let pins: KeyPins
    let reconnectDelay: Duration
    let jitter: Duration
    let requestTimeout: Duration
    let logger: Logger

    /// The live connection's outbound queue, once the WebSocket is open.
    var link: (serial: Int, sink: AsyncStream<String>.Continuation)?
    var serial = 0
    var loggedIn = false
    var everLoggedIn = false
    var closed = false
    var heartbeat: Duration = SignalingProtocol.defaultHeartbeat
    var lastHeard: ContinuousClock.Instant = .now
    var loop: Task<Void, Never>?
    var firstLogin: CheckedContinuation<WelcomeBody, any Error>?
    /// A login error that retrying cannot fix (the name belongs to another key).
    var fatal: SignalingError?
    /// Why the current connection is being ended by the client itself.
    var endReason: String?
    /// A ping sent by ``probe(within:)`` and when its answer is due.
    var probe: (sent: ContinuousClock.Instant, due: ContinuousClock.Instant)?
    /// The task that runs the live WebSocket connection; cancelled to drop it at once.
    var connection: Task<Void, any Error>?
    /// The next reconnect goes at once: the connection was ended by a failed probe (this
    /// side's network changed), not by a node that went away.
    var reconnectAtOnce = false

    /// Requests waiting for their `ack`, `members` or `error`, by id.
    var waiting: [String: CheckedContinuation<SignalingMessage, any Error>] = [:]
    /// Chat not yet acknowledged by the node, in sending order: resent after a reconnect.
    var outbox: [SignalingMessage] = []
    var subscriptions: Set<String> = []
    /// (sender, id) of chat already reported, so that a redelivery is not reported twice.
    var seen = RecentSet(capacity: 10_000)
    /// Call-setup messages taken within the freshness window, so that a replay is refused.
    var callFreshness = CallFreshness(capacity: 4096)

    /// - Parameters:
    ///   - url: the node's WebSocket URL, such as `ws://127.0.0.1:8080/ws`.
    ///   - pins: keys of peers seen before (trust on first use).
    ///   - fallbacks: the node's other URLs (the other members of a cluster), tried in turn
    ///     when `url` cannot be reached or its connection is lost.
    public init(url: String, fallbacks: [String] = [], name: String, identity: Identity, pins: KeyPins = KeyPins(path: nil),
                reconnectDelay: Duration = .seconds(5), jitter: Duration = .seconds(1), requestTimeout: Duration = .seconds(30),
                logger: Logger = Logger(label: "meshnode.signaling.client")) {
        self.url = Self.webSocketURL(url)
        var given: [String] = []
        for candidate in ([url] + fallbacks).map(Self.webSocketURL) where !given.contains(candidate) { given.append(candidate) }
        self.urls = given
        self.givenURLs = given.count
        self.name = name
        self.identity = identity
        self.pins = pins
        self.reconnectDelay = reconnectDelay
        self.jitter = jitter
        self.requestTimeout = requestTimeout
        self.logger = logger
        (events, eventSink) = AsyncStream.makeStream(of: SignalingEvent.self)
    }

    /// `http://host:port` becomes `ws://host:port/ws`; a ws/wss URL without a path gets `/ws`.
    static func webSocketURL(_ text: String) -> String {
        var url = text
        if url.hasPrefix("http://") { url = "ws://" + url.dropFirst(7) }
        if url.hasPrefix("https://") { url = "wss://" + url.dropFirst(8) }
        if !url.contains("://") { url = "ws://" + url }
        let afterScheme = url.range(of: "://")!.upperBound
        if !url[afterScheme...].contains("/") { url += SignalingProtocol.path }
        return url
    }

    /// The URL of the member dialled now (`url` unless a failover moved on).
    public var activeURL: String { urls[current] }

    /// `host:port` of the node, which qualifies peer names in the pin file.
    public nonisolated var nodeAuthority: String {
        let afterScheme = url.range(of: "://").map { url[$0.upperBound...] } ?? Substring(url)
        return String(afterScheme.prefix { $0 != "/" })
    }

    /// The address a peer's key is pinned under: `name@host:port` of this node.
    public nonisolated func pinAddress(of peer: String) -> String {
        peer.contains("@") ? peer : "\(peer)@\(nodeAuthority)"
    }

    /// Connects and logs in; returns the node's welcome. Throws when the first attempt fails;
    /// after that the client reconnects on its own until `close()`.
    @discardableResult
    public func connect() async throws -> WelcomeBody {
        guard loop == nil else { throw SignalingError(.badField, "connect() was called already") }
        let welcome = try await withCheckedThrowingContinuation { continuation in
            firstLogin = continuation
            loop = Task { await self.run() }
        }
        return welcome
    }

    /// Leaves the node and ends `events`.
    public func close() {
        closed = true
        loop?.cancel()
        link?.sink.finish()
        link = nil
        failWaiting(SignalingError(.disconnected, "the client was closed"))
        eventSink.finish()
    }

    /// Whether the client is logged in now.
    public var isOnline: Bool { loggedIn }
}
