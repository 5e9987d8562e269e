import Foundation
import HummingbirdWSClient
import Logging
import NIOSSL
import Signaling
import TestSupport

extension MeshNodeServer {
    /// The signaling endpoint.
    var signalingURL: String { "ws://127.0.0.1:\(httpPort)/ws" }

    /// `kill -9`: no graceful shutdown, nothing flushed by the node itself.
    func kill9() {
        guard process.isRunning else { return }
        process.terminate(SIGKILL)
        process.waitUntilExit()
    }
}

/// Collects a client's events so that a test can wait for the one it expects.
actor EventLog {
    private(set) var events: [SignalingEvent] = []
    private var reader: Task<Void, Never>?

    init(_ client: SignalingClient) {
        let stream = client.events
        Task { await self.start(stream) }
    }

    private func start(_ stream: AsyncStream<SignalingEvent>) {
        reader = Task {
            for await event in stream { self.append(event) }
        }
    }

    private func append(_ event: SignalingEvent) { events.append(event) }

    @discardableResult
    /// Waits for an event that `match` accepts, searching from `after` (an index into `events`).
    func wait<T: Sendable>(timeout: Duration = TestDeadline.event, after start: Int = 0,
                           _ match: @Sendable (SignalingEvent) -> T?) async throws -> T {
        try await waitFor("a matching event; saw \(events)", limit: timeout, interval: .milliseconds(2)) {
            start < events.count ? events[start...].lazy.compactMap(match).first : nil
        }
    }

    var count: Int { events.count }
}

/// A bare WebSocket to a node, speaking raw frames: for tests that need a client that misbehaves.
final class RawSignalingSocket: Sendable {
    let outgoing: AsyncStream<String>.Continuation
    let received = FrameQueue()
    let task: Task<Void, Never>
    /// The node as this socket dialled it, which its logins are signed for.
    let authority: String

    /// `tlsConfiguration` for a `wss://` URL (a client that trusts a test CA); nil: the system's.
    /// `serverName`: the name TLS asks for and checks (SNI takes no IP address, RFC 6066 §3).
    init(url: String, origin: String? = nil, tlsConfiguration: TLSConfiguration? = nil, serverName: String? = nil) {
        authority = LoginBody.authority(of: url) ?? ""
        let (stream, sink) = AsyncStream.makeStream(of: String.self)
        outgoing = sink
        let received = received
        var configuration = WebSocketClientConfiguration(maxFrameSize: 1 << 20)
        configuration.additionalHeaders[.secWebSocketProtocol] = SignalingProtocol.subprotocol
        if let origin { configuration.additionalHeaders[.origin] = origin }
        configuration.sniHostname = serverName
        let client = WebSocketClient(url: url, configuration: configuration, tlsConfiguration: tlsConfiguration,
                                     logger: Logger(label: "raw")) { inbound, outbound, _ in
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await text in stream { try? await outbound.write(.text(text)) }
                }
                group.addTask {
                    do {
                        for try await message in inbound.messages(maxSize: 1 << 20) {
                            if case .text(let text) = message { await received.push(text) }
                        }
                    } catch {}
                }
                await group.next()
                group.cancelAll()
            }
        }
        task = Task {
            _ = try? await client.run()
            await received.close()
        }
    }

    func send(_ message: SignalingMessage) { outgoing.yield(SignalingCodec.encode(message)) }
    func send(text: String) { outgoing.yield(text) }
    func close() { outgoing.finish() }

    func next(timeout: Duration = TestDeadline.event) async throws -> SignalingMessage {
        let text = try await waitFor("a frame", limit: timeout, interval: .milliseconds(2)) { await received.pop() }
        return try SignalingCodec.decode(text)
    }

    var isClosed: Bool { get async { await received.closed } }

    /// Logs in by answering the challenge.
    @discardableResult
    func login(_ name: String, _ identity: Identity) async throws -> WelcomeBody {
        let challenge = try await next()
        guard case .challenge(let body) = challenge.payload else { throw TestFailure("expected challenge, got \(challenge)") }
        return try await login(name, identity, nonce: body.nonce)
    }

    /// Logs in with a challenge already read.
    @discardableResult
    func login(_ name: String, _ identity: Identity, nonce: String) async throws -> WelcomeBody {
        send(SignalingMessage(id: "login", from: "", to: "@node", payload: .login(LoginBody(
            name: name, key: identity.publicKeyBase64, node: authority,
            sig: identity.sign(text: LoginBody.signedText(nonce: nonce, name: name, node: authority))))))
        let reply = try await next()
        guard case .welcome(let welcome) = reply.payload else { throw TestFailure("expected welcome, got \(reply)") }
        return welcome
    }
}

actor FrameQueue {
    private var frames: [String] = []
    private(set) var closed = false
    func push(_ text: String) { frames.append(text) }
    func pop() -> String? { frames.isEmpty ? nil : frames.removeFirst() }
    func close() { closed = true }
}
