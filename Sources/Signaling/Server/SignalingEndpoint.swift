import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import MeshCore
import NIOCore
import NIOWebSocket
import STUN

/// The WebSocket endpoint `/ws` with subprotocol `meshnode.v1` (docs/protocol.md "Transport"):
/// it upgrades matching requests and pumps frames between the socket and the hub.
public struct SignalingEndpoint: Sendable {
    public let hub: SignalingHub
    /// WebSocket connections held at once (`max-connections`); upgrades beyond it are refused.
    public let limit: ConnectionLimit
    /// The largest WebSocket message read at all; between `SignalingProtocol.maxFrameBytes` and
    /// this, the client gets a `too-large` error and stays connected.
    public static let hardFrameLimit = 1 << 20

    /// The web pages that may open `/ws` (`allow-origin`; by default the page's own only).
    public let origins: OriginPolicy
    /// Connections one source address may hold (`max-connections-per-ip`).
    public let sources: SourceLimit
    /// Closes every connection with 1012 on a graceful restart (SIGTERM).
    public let drain = ConnectionDrain()

    public init(hub: SignalingHub, limit: ConnectionLimit = ConnectionLimit(maximum: ConnectionLimit.defaultMaximum()),
                origins: OriginPolicy = OriginPolicy(), sources: SourceLimit = SourceLimit()) {
        self.hub = hub
        self.limit = limit
        self.origins = origins
        self.sources = sources
    }

    /// The WebSocket settings the HTTP server needs for this endpoint.
    public static var webSocketConfiguration: WebSocketServerConfiguration {
        // Liveness is the protocol's own ping/pong (browsers cannot send WebSocket pings).
        WebSocketServerConfiguration(maxFrameSize: hardFrameLimit, autoPing: .disabled, closeTimeout: .seconds(2))
    }

    /// Decides whether an HTTP request becomes a signaling connection: `GET /ws` offering the
    /// `meshnode.v1` subprotocol. Anything else goes on to the HTTP router.
    public func shouldUpgrade(_ request: HTTPRequest, channel: any Channel, logger: Logger)
        -> ShouldUpgradeResult<WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>> {
        let path = request.path.map { String($0.prefix { $0 != "?" }) } ?? ""
        guard path == SignalingProtocol.path else { return .dontUpgrade }
        let offered = request.headerFields[values: .secWebSocketProtocol]
            .flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces) }
        guard offered.contains(SignalingProtocol.subprotocol) else { return .dontUpgrade }
        // Restarting: a new connection is told so at once, as the open ones were.
        if drain.isDraining {
            return .upgrade([.secWebSocketProtocol: SignalingProtocol.subprotocol]) { _, outbound, _ in
                try? await outbound.close(WebSocketErrorCode(codeNumber: ConnectionDrain.serviceRestart), reason: ConnectionDrain.reason)
            }
        }
        // A page of another site in a visitor's browser: closed at once with 1008 Policy
        // Violation (RFC 6455 §7.4.1) and the reason, before it counts against the cap. Logged
        // at debug level: a hostile page can knock as often as it likes.
        if let refusal = origins.refusal(origin: request.headerFields[.origin], host: request.authority) {
            logger.debug("refusing a WebSocket connection: \(refusal)")
            return .upgrade([.secWebSocketProtocol: SignalingProtocol.subprotocol]) { _, outbound, _ in
                // A close reason has at most 123 bytes (RFC 6455 §5.5): the short form.
                try? await outbound.close(.policyViolation, reason: "origin not allowed (allow-origin)")
            }
        }
        // At the cap the connection is upgraded only to be closed at once with 1013 "Try Again
        // Later" (RFC 6455 §7.4, IANA registry) and a reason: Hummingbird answers any refused
        // upgrade with a bare 400, which would not tell the client why.
        let remoteIP = channel.remoteAddress?.ipAddress
        let source = channel.remoteAddress.flatMap(IPAddress.init)
        // One source beyond its share: closed the same way, with its own reason. Logged at
        // debug level, as anyone can knock as often as they like.
        if let source, !sources.acquire(source) {
            logger.debug("refusing a WebSocket connection: source at max-connections-per-ip", metadata: ["source": "\(remoteIP)"])
            let maximum = sources.maximum
            return .upgrade([.secWebSocketProtocol: SignalingProtocol.subprotocol]) { _, outbound, _ in
                try? await outbound.close(WebSocketErrorCode(codeNumber: Self.tryAgainLater),
                                          reason: "this address holds max-connections-per-ip (\(maximum))")
            }
        }
        let sources = sources
        guard limit.acquire() else {
            if let source { sources.release(source) }
            logger.warning("refusing a WebSocket connection: at max-connections", metadata: ["max-connections": "\(limit.maximum)"])
            let maximum = limit.maximum
            return .upgrade([.secWebSocketProtocol: SignalingProtocol.subprotocol]) { _, outbound, _ in
                try? await outbound.close(WebSocketErrorCode(codeNumber: Self.tryAgainLater),
                                          reason: "node at max-connections (\(maximum)); try again later")
            }
        }
        // Released when the TCP connection closes, whatever ends it (also a failed upgrade).
        let limit = limit
        channel.closeFuture.whenComplete { _ in
            limit.release()
            if let source { sources.release(source) }
        }
        let host = request.authority.map(Self.host(ofAuthority:))
        let (hub, drain) = (hub, drain)
        return .upgrade([.secWebSocketProtocol: SignalingProtocol.subprotocol]) { inbound, outbound, _ in
            drain.opened()
            defer { drain.closed() }
            // true: the connection is over. On a drain, the close handshake ends the inbound
            // stream after the message in hand (a chat message being stored is stored) and
            // `serve` ends by itself; a client that does not answer the close within
            // `drainGrace` is cut.
            await withTaskGroup(of: Bool.self) { group in
                group.addTask {
                    await Self.serve(hub: hub, hostHint: host, remoteIP: remoteIP, inbound: inbound, outbound: outbound)
                    return true
                }
                group.addTask {
                    await drain.untilDraining()
                    guard !Task.isCancelled else { return false }
                    try? await outbound.close(WebSocketErrorCode(codeNumber: ConnectionDrain.serviceRestart), reason: ConnectionDrain.reason)
                    try? await Task.sleep(for: ConnectionDrain.grace)
                    return !Task.isCancelled
                }
                // Two tasks: the loop ends after both.
                while let over = await group.next() {
                    if over { group.cancelAll() }
                }
            }
        }
    }

    /// The WebSocket close code for a node at its connection cap: 1013 Try Again Later.
    public static let tryAgainLater = 1013

    /// The text an HTTP client gets at `/ws` without a WebSocket upgrade.
    public static let upgradeRequiredText = "This is the meshnode signaling endpoint: open a WebSocket with subprotocol \(SignalingProtocol.subprotocol) (see docs/protocol.md).\n"

    static func serve(hub: SignalingHub, hostHint: String?, remoteIP: String?, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async {
        let (frames, sink) = AsyncStream.makeStream(of: ConnectionHandle.Outbound.self, bufferingPolicy: .bufferingOldest(4096))
        let handle = await hub.open(hostHint: hostHint, remoteIP: remoteIP, sink: sink)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await item in frames {
                    guard case .frame(let text) = item else { break }
                    do { try await outbound.write(.text(text)) } catch { break }
                }
            }
            group.addTask {
                do {
                    for try await message in inbound.messages(maxSize: hardFrameLimit) {
                        // Each frame is handled in a task of its own, awaited so the order holds:
                        // the hub's async frames (tens of KB deep in login or chat) then live in
                        // that task's allocator and go when it ends, instead of staying with
                        // this long-lived reader task for the connection's lifetime (issue 17).
                        switch message {
                        case .text(let text): await Task { await hub.receive(text, on: handle.id) }.value
                        case .binary: await hub.receiveBinary(on: handle.id)
                        }
                    }
                } catch {
                    // The socket failed or the peer broke the WebSocket protocol: the connection ends.
                }
            }
            // Whichever side ends first (peer closed, or the hub closed the connection) ends both.
            await group.next()
            group.cancelAll()
        }
        await hub.closed(handle.id)
    }

    /// `host` of `host:port` or `[v6]:port`.
    static func host(ofAuthority authority: String) -> String {
        if authority.hasPrefix("["), let end = authority.firstIndex(of: "]") {
            return String(authority[authority.index(after: authority.startIndex)..<end])
        }
        return String(authority.split(separator: ":").first ?? Substring(authority))
    }
}
