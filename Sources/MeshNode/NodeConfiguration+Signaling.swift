import Foundation
import Signaling

/// The signaling settings of `meshnode serve`: `data-dir` (default `~/.local/share/meshnode`, or
/// `$XDG_DATA_HOME/meshnode`), `heartbeat` in seconds (default 15), `node-key` (the node's
/// Ed25519 identity file, default `<data-dir>/node-identity`, made on first start) and `link`
/// (WebSocket URLs of nodes to keep a link to), `max-connections` (WebSocket connections held
/// at once; default: the open-file limit minus headroom) and `gossip-interval` (seconds between
/// node record refreshes, docs/mesh.md; records expire after six intervals).
public struct SignalingSettings: Sendable, Equatable {
    public var dataDirectory: String
    public var heartbeat: Duration
    public var nodeKeyPath: String
    public var links: [String]
    public var maxConnections: Int
    public var gossipInterval: Duration

    init(_ settings: NodeSettings) throws {
        var directory = settings.dataDir ?? Self.defaultDataDirectory
        guard !directory.isEmpty else { throw NodeConfigurationError(key: "data-dir", reason: "must not be empty") }
        if directory.hasPrefix("~/") { directory = NSHomeDirectory() + directory.dropFirst(1) }
        dataDirectory = directory
        let seconds = settings.heartbeat ?? 15
        guard seconds >= 0.1, seconds <= 3600 else {
            throw NodeConfigurationError(key: "heartbeat", reason: "must be 0.1 to 3600 seconds")
        }
        heartbeat = .milliseconds(Int((seconds * 1000).rounded()))
        nodeKeyPath = settings.nodeKey ?? directory + "/node-identity"
        links = settings.link ?? []
        if let cap = settings.maxConnections {
            guard cap >= 1 else { throw NodeConfigurationError(key: "max-connections", reason: "must be at least 1") }
            maxConnections = cap
        } else {
            maxConnections = ConnectionLimit.defaultMaximum()
        }
        let gossip = settings.gossipInterval ?? 5
        guard gossip >= 0.1, gossip <= 3600 else {
            throw NodeConfigurationError(key: "gossip-interval", reason: "must be 0.1 to 3600 seconds")
        }
        gossipInterval = .milliseconds(Int((gossip * 1000).rounded()))
        for link in links {
            guard let url = URL(string: link), ["ws", "wss", "http", "https"].contains(url.scheme ?? ""), url.host != nil else {
                throw NodeConfigurationError(key: "link", reason: "'\(link)' is not a ws://HOST:PORT/ws URL")
            }
        }
    }

    static var defaultDataDirectory: String {
        let env = ProcessInfo.processInfo.environment
        let base = env["XDG_DATA_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (NSHomeDirectory() + "/.local/share")
        return base + "/meshnode"
    }
}
