import Foundation
import MeshCore
import Signaling

/// The signaling settings of `meshnode serve`: `data-dir` (default `~/.local/share/meshnode`, or
/// `$XDG_DATA_HOME/meshnode`, or systemd's `$STATE_DIRECTORY`), `heartbeat` in seconds (default 15), `node-key` (the node's
/// Ed25519 identity file, default `<data-dir>/node-identity`, made on first start) and `link`
/// (WebSocket URLs of nodes to keep a link to), `max-connections` (WebSocket connections held
/// at once; default: the open-file limit minus headroom) and `gossip-interval` (seconds between
/// node record refreshes, docs/mesh.md; records expire after six intervals), `mesh-key` (the
/// node keys of a closed mesh).
public struct SignalingSettings: Sendable, Equatable {
    public var dataDirectory: String
    public var heartbeat: Duration
    public var nodeKeyPath: String
    public var links: [String]
    /// How `wss://` links check certificates (`link-ca`; pins in the link URLs).
    public var linkTLS: LinkTLS
    public var maxConnections: Int
    public var gossipInterval: Duration
    /// `mesh-key`: the node keys of a closed mesh; nil for an open one.
    public var meshKeys: Set<String>?
    /// The store's bounds (`store-max-*`, `recipient-max-*`, `room-max-*`, `message-expiry`).
    public var storeLimits: StoreLimits
    /// The rule of a room whose creator names none (`room-rule`).
    public var roomRule: RoomRule
    /// Participants of a peer-to-peer room call (`room-call-mesh-limit`).
    public var roomCallMeshLimit: Int
    /// Whether the node forwards room calls past that limit (`forwarder`, docs/rooms.md).
    public var forwarder: Bool
    /// Nodes whose room calls this node's forwarder also forwards, by WebSocket URL (`forward-for`).
    public var forwardFor: [String]
    /// Node keys of forwarding nodes this node assigns calls to (`forwarder-key`).
    public var forwarderKeys: Set<String>
    /// `HOST:PORT` forms clients reach the node at besides its bind addresses (`public-address`).
    public var publicAddresses: [String]
    /// Web origins besides the page's own whose pages may open `/ws` (`allow-origin`).
    public var allowedOrigins: [String]
    /// WebSocket connections one source address may hold (`max-connections-per-ip`).
    public var maxConnectionsPerIP: Int
    /// How long a connection may stay without logging in or linking (`login-timeout`).
    public var loginTimeout: Duration
    /// Cluster mode (`cluster`, `member`; docs/cluster.md): the shared database and this
    /// process's member name; nil for a single node on SQLite.
    public var cluster: String?
    public var member: String?
    /// `member-url`: this member's `/ws` as clients reach it, told to clients at login.
    public var memberURL: String?

    /// `heartbeat` when none is given.
    static let defaultHeartbeatSeconds = 15
    /// `login-timeout` when none is given.
    static let defaultLoginTimeoutSeconds = 30
    /// `gossip-interval` when none is given.
    static let defaultGossipIntervalSeconds = 5

    /// The values were checked against their settings' rules (`NodeSettings.all`).
    init(_ settings: NodeSettings) {
        var directory = settings.dataDir ?? Self.defaultDataDirectory
        directory = UserDirectories.expandingTilde(directory)
        dataDirectory = directory
        heartbeat = Self.duration(seconds: settings.heartbeat ?? Double(Self.defaultHeartbeatSeconds))
        nodeKeyPath = settings.nodeKey ?? directory + "/node-identity"
        links = settings.link ?? []
        linkTLS = LinkTLS(caFile: settings.linkCA)
        maxConnections = settings.maxConnections ?? ConnectionLimit.defaultMaximum()
        gossipInterval = Self.duration(seconds: settings.gossipInterval ?? Double(Self.defaultGossipIntervalSeconds))
        meshKeys = settings.meshKey.map(Set.init)
        var limits = StoreLimits()
        limits.messages = settings.storeMaxMessages ?? limits.messages
        limits.bytes = settings.storeMaxBytes ?? limits.bytes
        limits.recipientMessages = settings.recipientMaxMessages ?? limits.recipientMessages
        limits.recipientBytes = settings.recipientMaxBytes ?? limits.recipientBytes
        limits.roomMessages = settings.roomMaxMessages ?? limits.roomMessages
        limits.roomBytes = settings.roomMaxBytes ?? limits.roomBytes
        limits.roomMembers = settings.roomMaxMembers ?? limits.roomMembers
        limits.rooms = settings.storeMaxRooms ?? limits.rooms
        limits.memberRooms = settings.memberMaxRooms ?? limits.memberRooms
        limits.roomHistory = settings.roomHistory ?? limits.roomHistory
        limits.historyAge = settings.roomHistoryDays.map { $0 * 86_400 } ?? limits.historyAge
        limits.nodeMemberships = settings.linkMaxMemberships ?? limits.nodeMemberships
        limits.names = settings.storeMaxNames ?? limits.names
        limits.expiry = settings.messageExpiry.map { $0 * 86_400 } ?? limits.expiry
        limits.nameExpiry = settings.nameExpiry.map { $0 * 86_400 } ?? limits.nameExpiry
        limits.deliveredKept = settings.storeKeptIDs ?? limits.deliveredKept
        limits.writeQueue = settings.storeWriteQueue ?? limits.writeQueue
        storeLimits = limits
        roomRule = settings.roomRule.flatMap(RoomRule.init(rawValue:)) ?? .open
        roomCallMeshLimit = settings.roomCallMeshLimit ?? HubConfiguration().roomCallMeshLimit
        forwarder = settings.forwarder ?? false
        forwardFor = settings.forwardFor ?? []
        forwarderKeys = Set(settings.forwarderKey ?? [])
        publicAddresses = (settings.publicAddress ?? []).compactMap { LoginBody.authority($0) }
        allowedOrigins = settings.allowOrigin ?? []
        maxConnectionsPerIP = settings.maxConnectionsPerIP ?? SourceLimit.defaultMaximum
        loginTimeout = Self.duration(seconds: settings.loginTimeout ?? Double(Self.defaultLoginTimeoutSeconds))
        cluster = settings.cluster
        member = settings.member
        memberURL = settings.memberURL
    }

    private static func duration(seconds: Double) -> Duration {
        .milliseconds(Int((seconds * 1000).rounded()))
    }

    /// `$STATE_DIRECTORY` when systemd gives one (the unit's `StateDirectory=meshnode`, its first
    /// path), else `$XDG_DATA_HOME/meshnode`, else `$HOME/.local/share/meshnode`.
    static var defaultDataDirectory: String {
        let state = ProcessInfo.processInfo.environment["STATE_DIRECTORY"]?.split(separator: ":").first.map(String.init)
        if let state, state.hasPrefix("/") { return state }
        return UserDirectories.dataHome + "/meshnode"
    }
}
