import Foundation
import Logging
import Testing
import TestSupport
@testable import Signaling

/// A hub on a temporary store, driven without sockets: each `TestPeer` is one connection whose
/// frames the test reads back. With a `ManualClock` the hub's heartbeat and rate limits see only
/// the time the test advances.
struct HubFixture {
    let hub: SignalingHub
    let store: SignalingStore
    let directory: String

    /// The address test peers dial: the hub accepts logins signed for it.
    static let authority = "127.0.0.1:8080"

    init(heartbeat: Duration = .seconds(15), rate: Double = 50, burst: Double = 200,
         node: String? = nil, identity: Identity? = nil, clock: ManualClock? = nil,
         logger: Logger = Logger(label: "test"), meshKeys: Set<String>? = nil,
         limits: StoreLimits = StoreLimits(), configure: (inout HubConfiguration) -> Void = { _ in }) async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshnode-hub-\(UUID().uuidString)").path
        store = try await SignalingStore.open(directory: directory, limits: limits, logger: Logger(label: "test"))
        var configuration = HubConfiguration()
        configuration.heartbeat = heartbeat
        configuration.rate = rate
        configuration.burst = burst
        configuration.nodeAddress = node
        configuration.nodeIdentity = identity
        configuration.meshKeys = meshKeys
        configuration.authorities = Set([Self.authority] + (node.flatMap { LoginBody.authority($0) }.map { [$0] } ?? []))
        configure(&configuration)
        let now: @Sendable () -> ContinuousClock.Instant
        if let clock { now = { clock.now } } else { now = { .now } }
        hub = SignalingHub(store: store, configuration: configuration, logger: logger, now: now) { name, _ in
            [ICEServer(urls: ["turn:127.0.0.1:3478?transport=udp"], username: "1:\(name)", credential: "x")]
        }
    }

    /// A test connection; `fastPath: false` sends every frame through the hub's actor, as
    /// a node link or a cluster member does, instead of the chat fast path first.
    func peer(fastPath: Bool = true) async -> TestPeer {
        await TestPeer(hub: hub, fastPath: fastPath)
    }

    /// A test connection logged in as `name` with `key`.
    func login(_ name: String, _ key: Identity, fastPath: Bool = true) async throws -> TestPeer {
        let peer = await peer(fastPath: fastPath)
        try await peer.login(name, key)
        return peer
    }

    /// A test connection per name, each logged in with a fresh key.
    func loggedIn(_ names: String...) async throws -> [(peer: TestPeer, key: Identity)] {
        var peers: [(peer: TestPeer, key: Identity)] = []
        for name in names {
            let key = Identity.generate()
            peers.append((try await login(name, key), key))
        }
        return peers
    }

    func close() async {
        await store.close()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// Frames received by one test connection.
actor FrameBuffer {
    var frames: [String] = []
    var finished = false
    func append(_ frame: String) { frames.append(frame) }
    func finish() { finished = true }
    func take() -> String? { frames.isEmpty ? nil : frames.removeFirst() }
}

/// One connection of a test, fed as `SignalingConnectionHandler` feeds the hub: a frame goes
/// to the chat fast path (SignalingHub+FastChat.swift) when it takes it, to the hub otherwise,
/// and the next frame goes only once the last was handled.
final class TestPeer: Sendable {
    let hub: SignalingHub
    let handle: ConnectionHandle
    let buffer = FrameBuffer()
    let reader: Task<Void, Never>
    let fastPath: Bool

    init(hub: SignalingHub, fastPath: Bool = true) async {
        self.hub = hub
        self.fastPath = fastPath
        let (stream, sink) = AsyncStream.makeStream(of: ConnectionHandle.Outbound.self)
        handle = await hub.open(hostHint: "127.0.0.1", sink: sink)
        let buffer = buffer
        reader = Task {
            for await item in stream {
                if case .frame(let text) = item { await buffer.append(text) } else { break }
            }
            await buffer.finish()
        }
    }

    var isClosed: Bool { get async { await buffer.finished } }

    func send(_ text: String) async {
        if fastPath {
            let handle = handle
            let taken: Bool = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let taken = hub.receiveFast(text, on: handle) { reply in
                    if let reply { handle.send(text: reply) }
                    continuation.resume(returning: true)
                }
                if !taken { continuation.resume(returning: false) }
            }
            if taken { return }
        }
        await hub.receive(text, on: handle.id)
    }

    func send(_ message: SignalingMessage) async {
        await send(SignalingCodec.encode(message))
    }

    func send(_ payload: SignalingPayload, to: String = "@node", from: String = "", id: String = UUID().uuidString) async {
        await send(SignalingMessage(id: id, from: from, to: to, payload: payload))
    }

    /// The next frame, decoded; fails the test after `timeout`.
    func next(timeout: Duration = TestDeadline.event) async throws -> SignalingMessage {
        let text = try await waitFor("a frame", limit: timeout, interval: .milliseconds(2)) { await buffer.take() }
        return try SignalingCodec.decode(text)
    }

    /// Skips frames until one matches.
    func next<T>(timeout: Duration = TestDeadline.event, _ match: (SignalingMessage) -> T?) async throws -> T {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let message = try? await next(timeout: deadline - ContinuousClock.now), let value = match(message) { return value }
        }
        throw TestFailure("no matching frame within \(timeout)")
    }

    /// The answer to the request `id`: "ok" for its ack, or its error's code (frames between are
    /// skipped).
    func answer(to id: String) async throws -> String {
        try await next { message in
            switch message.payload {
            case .ack(let body) where body.of == id: "ok"
            case .error(let body) where body.of == id: body.code.rawValue
            default: nil
            }
        }
    }

    /// The next frame is the one with `id`: the hub keeps the order of what it sends on a
    /// connection, so a frame that should never come cannot be in flight behind this marker.
    /// How a test shows that something did not happen, without waiting for a quiet period.
    @discardableResult
    func expectNext(id: String, _ what: String) async throws -> SignalingMessage {
        let message = try await next()
        guard message.id == id else { throw TestFailure("expected \(what) (id \(id)) next, got \(message)") }
        return message
    }

    /// Answers the challenge; returns the welcome.
    @discardableResult
    func login(_ name: String, _ identity: Identity) async throws -> WelcomeBody {
        let nonce = try await next { if case .challenge(let body) = $0.payload { body.nonce } else { nil } }
        await send(.login(LoginBody.signed(name: name, identity: identity, nonce: nonce)))
        let reply = try await next()
        guard case .welcome(let welcome) = reply.payload else { throw TestFailure("expected welcome, got \(reply)") }
        return welcome
    }

    func error(timeout: Duration = TestDeadline.event) async throws -> SignalingError {
        try await next(timeout: timeout) { if case .error(let body) = $0.payload { body.error } else { nil } }
    }

    func ack(timeout: Duration = TestDeadline.event) async throws -> AckBody {
        try await next(timeout: timeout) { if case .ack(let body) = $0.payload { body } else { nil } }
    }
}

extension LoginBody {
    /// A login for `name`, signed for the node at `node` (the fixture's by default).
    static func signed(name: String, identity: Identity, nonce: String, node: String = HubFixture.authority) -> LoginBody {
        LoginBody(name: name, key: identity.publicKeyBase64, node: node,
                  sig: identity.sign(text: LoginBody.signedText(nonce: nonce, name: name, node: node)))
    }
}

/// A node link opened straight on the hub and played by the test: `next` reads what the hub sends
/// to that node, `send` speaks as that node.
final class TestLink {
    let hub: SignalingHub
    let handle: ConnectionHandle
    private var frames: AsyncStream<ConnectionHandle.Outbound>.Iterator

    init(_ hub: SignalingHub, node: String, key: String = Identity.generate().publicKeyBase64) async {
        let (stream, sink) = AsyncStream.makeStream(of: ConnectionHandle.Outbound.self)
        self.hub = hub
        handle = await hub.openLink(node: node, key: key, sink: sink)
        frames = stream.makeAsyncIterator()
    }

    /// The first message to the node that `match` maps to a value; earlier ones are skipped.
    func next<T>(_ match: (SignalingMessage) -> T?) async throws -> T {
        while let item = await frames.next() {
            if case .frame(let text) = item, let message = try? SignalingCodec.decode(text), let value = match(message) { return value }
        }
        throw TestFailure("the link closed")
    }

    func send(_ message: SignalingMessage) async { await hub.receive(SignalingCodec.encode(message), on: handle.id) }
}
