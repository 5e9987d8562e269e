import Foundation
import Logging
import MeshCore
import NIOCore
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
    /// What other threads hand to the connections of each event loop (the store's answers, the
    /// hub's frames), batched per loop.
    let outboxes = LoopOutboxes()

    public init(hub: SignalingHub, limit: ConnectionLimit = ConnectionLimit(maximum: ConnectionLimit.defaultMaximum()),
                origins: OriginPolicy = OriginPolicy(), sources: SourceLimit = SourceLimit()) {
        self.hub = hub
        self.limit = limit
        self.origins = origins
        self.sources = sources
    }

    /// What becomes of an upgrade request to this node (``admit(path:protocols:origin:host:channel:logger:)``).
    public enum Admission: Sendable {
        /// Not `GET /ws` offering `meshnode.v1`: the upgrade is refused (HTTP 400).
        case notSignaling
        /// Upgraded only to be closed at once with this WebSocket close code and reason.
        case refused(code: Int, reason: String)
        /// A signaling connection: it holds its places until the TCP connection closes.
        case accepted(hostHint: String?, remoteIP: String?)
    }

    /// Decides whether an upgrade request becomes a signaling connection: `GET /ws` offering
    /// the `meshnode.v1` subprotocol, from an allowed origin, within the connection caps.
    /// Refusals past the subprotocol check are upgraded and closed with a code and a reason,
    /// because a bare HTTP 400 would not tell the client why. An accepted connection holds a
    /// place in `limit` and `sources` until `channel` closes, whatever ends it.
    /// - Parameter protocols: the `Sec-WebSocket-Protocol` header values, as sent.
    public func admit(path: String, protocols: [String], origin: String?, host: String?, channel: any Channel,
                      logger: Logger) -> Admission {
        guard path.prefix(while: { $0 != "?" }) == SignalingProtocol.path else { return .notSignaling }
        let offered = protocols.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        guard offered.contains(SignalingProtocol.subprotocol) else { return .notSignaling }
        // Restarting: a new connection is told so at once, as the open ones were.
        if drain.isDraining { return .refused(code: ConnectionDrain.serviceRestart, reason: ConnectionDrain.reason) }
        // A page of another site in a visitor's browser: closed at once with 1008 Policy
        // Violation (RFC 6455 §7.4.1) and the reason, before it counts against the cap. Logged
        // at debug level: a hostile page can knock as often as it likes.
        if let refusal = origins.refusal(origin: origin, host: host) {
            logger.debug("refusing a WebSocket connection: \(refusal)")
            // A close reason has at most 123 bytes (RFC 6455 §5.5): the short form.
            return .refused(code: Self.policyViolation, reason: "origin not allowed (allow-origin)")
        }
        let remoteIP = channel.remoteAddress?.ipAddress
        let source = channel.remoteAddress.flatMap(IPAddress.init)
        // One source beyond its share: closed with 1013 "Try Again Later" (RFC 6455 §7.4, IANA
        // registry) and its own reason. Logged at debug level, as anyone can knock as often as they like.
        if let source, !sources.acquire(source) {
            logger.debug("refusing a WebSocket connection: source at max-connections-per-ip", metadata: ["source": "\(remoteIP ?? "?")"])
            return .refused(code: Self.tryAgainLater, reason: "this address holds max-connections-per-ip (\(sources.maximum))")
        }
        guard limit.acquire() else {
            if let source { sources.release(source) }
            logger.warning("refusing a WebSocket connection: at max-connections", metadata: ["max-connections": "\(limit.maximum)"])
            return .refused(code: Self.tryAgainLater, reason: "node at max-connections (\(limit.maximum)); try again later")
        }
        // Released when the TCP connection closes, whatever ends it (also a failed upgrade).
        let (limit, sources) = (limit, sources)
        channel.closeFuture.whenComplete { _ in
            limit.release()
            if let source { sources.release(source) }
        }
        return .accepted(hostHint: host.map(Self.host(ofAuthority:)), remoteIP: remoteIP)
    }

    /// The WebSocket close code for a refused origin: 1008 Policy Violation (RFC 6455 §7.4.1).
    public static let policyViolation = 1008

    /// The WebSocket close code for a node at its connection cap: 1013 Try Again Later.
    public static let tryAgainLater = 1013

    /// The text an HTTP client gets at `/ws` without a WebSocket upgrade.
    public static let upgradeRequiredText = "This is the meshnode signaling endpoint: open a WebSocket with subprotocol \(SignalingProtocol.subprotocol) (see docs/protocol.md).\n"

    /// `host` of `host:port` or `[v6]:port`.
    static func host(ofAuthority authority: String) -> String {
        if authority.hasPrefix("["), let end = authority.firstIndex(of: "]") {
            return String(authority[authority.index(after: authority.startIndex)..<end])
        }
        return String(authority.split(separator: ":").first ?? Substring(authority))
    }
}
