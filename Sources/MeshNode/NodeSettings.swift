import Foundation
public import MeshCore
import ICE
import Logging
import NIOCore
import NIOPosix
import Yams
import STUN
import TURNServer
import SDP
import Signaling

/// The settings of `meshnode serve`, as flags or as keys of a YAML config file. The keys are
/// the flag names without dashes in front; a flag given on the command line wins over the file.
///
/// Each field is declared as a setting in ``all``; nil means not given.
public struct NodeSettings: Sendable, Equatable {
    public var bind: [String]?
    public var stunPort: Int?
    public var tlsPort: Int?
    public var tlsCert: String?
    public var tlsKey: String?
    public var httpPort: Int?
    public var realm: String?
    public var user: [String]?
    public var turnSecret: String?
    public var allowPeer: [String]?
    public var denyPeer: [String]?
    public var relayIP: [String]?
    public var relayPorts: String?
    public var userQuota: Int?
    public var totalQuota: Int?
    public var maxBps: Int?
    public var logLevel: String?
    public var threads: Int?
    public var rfc5780: Bool?
    public var nonceLifetime: Int?
    public var turnMaxConnections: Int?
    public var turnMaxConnectionsPerIP: Int?
    public var turnIdleTimeout: Double?
    public var turnGSO: Bool?
    public var turnNIORelay: Bool?
    public var turnConsolidateBelow: Int?
    public var dataDir: String?
    public var heartbeat: Double?
    public var nodeKey: String?
    public var link: [String]?
    public var maxConnections: Int?
    public var gossipInterval: Double?
    public var webRoot: String?
    public var meshKey: [String]?
    public var turnSecretFile: String?
    public var userFile: String?
    public var storeMaxMessages: Int?
    public var storeMaxBytes: Int?
    public var recipientMaxMessages: Int?
    public var recipientMaxBytes: Int?
    public var roomMaxMessages: Int?
    public var roomMaxBytes: Int?
    public var roomMaxMembers: Int?
    public var storeMaxRooms: Int?
    public var memberMaxRooms: Int?
    public var roomHistory: Int?
    public var roomHistoryDays: Double?
    public var linkMaxMemberships: Int?
    public var storeMaxNames: Int?
    public var messageExpiry: Double?
    public var roomRule: String?
    public var roomCallMeshLimit: Int?
    public var forwarder: Bool?
    public var forwardFor: [String]?
    public var forwarderKey: [String]?
    public var cluster: String?
    public var member: String?
    public var publicAddress: [String]?
    public var allowOrigin: [String]?
    public var statusAccess: String?
    public var statusTokenFile: String?
    public var nameExpiry: Double?
    public var storeKeptIDs: Int?
    public var storeWriteQueue: Int?
    public var maxConnectionsPerIP: Int?
    public var loginTimeout: Double?
    public var https: Bool?
    public var linkCA: String?
    public var publicHost: String?
    public var externalIP: [String]?
    public var httpRedirectPort: Int?
    public var singlePort: Bool?

    public init() {}

    /// Every setting, in the order of `serve --help`: the one place a setting is declared.
    /// Its flag, YAML key, kind, help text (with the defaults taken from the code that applies
    /// them) and rule follow from its entry here. A new setting is a field above, which keeps
    /// the typed value, an entry here, and its use in `NodeConfiguration`; a field without an
    /// entry fails `NodeSettingsTests`.
    ///
    /// The table lives here and not in the CLI because the library must not know
    /// ArgumentParser: `meshnode`'s `NodeSettingsOptions` makes an ArgumentParser option of
    /// each entry, so `serve --help`, shell completions and the parse errors of flags stay
    /// ArgumentParser's own. swift-configuration 1.4.0 was weighed and not taken: it reads keys
    /// that code asks for, so it has no list of settings to generate help from or to refuse
    /// unknown keys with, and its command-line provider splits values at commas
    /// (`--user alice:p,w` would become two users).
    public static let all: [NodeSetting] = {
        let turn = TURNServerConfiguration()
        let tlsPort = turn.tlsPort.map(String.init) ?? "none"
        let store = StoreLimits()
        return [
            .list("bind", \.bind, .numericIPAddress, help: "Address to listen on (repeatable). Default: 127.0.0.1 and ::1."),
            .integer("stun-port", \.stunPort, .port, help: "STUN/TURN port for UDP and TCP (default \(turn.port); 0 picks a free port)."),
            .integer("tls-port", \.tlsPort, .port, help: "STUN/TURN over TLS port (default \(tlsPort); 0 picks a free port).",
                     shorthand: .init(name: "no-tls", help: "Do not listen for TLS.", value: .integer(-1))),
            .text("tls-cert", \.tlsCert, help: "PEM certificate chain for TLS (default: a fresh self-signed certificate)."),
            .text("tls-key", \.tlsKey, help: "PEM private key for TLS."),
            .integer("http-port", \.httpPort, .port,
                     help: "HTTP port for the web page and /metrics (default \(NodeConfiguration.defaultHTTPPort))."),
            // RFC 8489 §14.9: a REALM is less than 763 bytes.
            .text("realm", \.realm, .bytes(1...762), help: "Realm of the long-term credentials (default \(turn.realm))."),
            .list("user", \.user, help: "A static TURN user NAME:PASSWORD (repeatable)."),
            .text("turn-secret", \.turnSecret, .notEmpty,
                  help: "Shared secret for TURN REST credentials (username EXPIRY:ID, password base64(HMAC-SHA1(secret, username)))."),
            .list("allow-peer", \.allowPeer, help: "Relay to this CIDR even if private or loopback (repeatable)."),
            .list("deny-peer", \.denyPeer, help: "Never relay to this CIDR (repeatable; beats allow-peer)."),
            .list("relay-ip", \.relayIP, .numericIPAddress,
                  help: "Address relayed ports are opened on (repeatable; default: the bind addresses)."),
            .text("relay-ports", \.relayPorts,
                  help: "Relay port range LOW-HIGH (default \(turn.relayPorts.lowerBound)-\(turn.relayPorts.upperBound))."),
            .integer("user-quota", \.userQuota, .atLeast(1), help: "Maximum allocations per user (default \(turn.userQuota))."),
            .integer("total-quota", \.totalQuota, .atLeast(1), help: "Maximum allocations in total (default \(turn.totalQuota))."),
            .integer("max-bps", \.maxBps, .atLeast(8_000, "bits/s"),
                     help: "Bandwidth cap per allocation and direction in bits per second (default: none)."),
            .integer("threads", \.threads, .within(1...64), help: "Event loop threads for STUN/TURN (default \(turn.threads))."),
            .flag("rfc5780", \.rfc5780,
                  help: "Answer RFC 5780 NAT behaviour discovery requests (off by default: it helps reflection attacks)."),
            .integer("nonce-lifetime", \.nonceLifetime, .within(1...86_400, "seconds"),
                     help: "Seconds a nonce stays valid before requests get 438 Stale Nonce (default \(turn.nonceLifetime))."),
            .integer("turn-max-connections", \.turnMaxConnections, .atLeast(1),
                     help: "TURN TCP and TLS connections held at once; more are closed when accepted (default \(turn.maxStreamConnections))."),
            .integer("turn-max-connections-per-ip", \.turnMaxConnectionsPerIP, .atLeast(1),
                     help: "TURN TCP and TLS connections held at once from one IPv4 address or IPv6 /64 (default \(turn.maxStreamConnectionsPerSource))."),
            .number("turn-idle-timeout", \.turnIdleTimeout, .within(0.1...3600, "seconds"),
                    help: "Seconds a TURN TCP or TLS connection may stay open without an allocation (default \(turn.streamIdleTimeout.nanoseconds / 1_000_000_000))."),
            .flag("turn-gso", \.turnGSO,
                  help: "Relay datagrams with UDP segmentation offload (less CPU per packet; not where routes go through IPsec or devices without checksum offload, whose refusals close the socket)."),
            .flag("turn-nio-relay", \.turnNIORelay,
                  help: "Relay UDP allocations through SwiftNIO channels instead of the relay engine threads (slower; for comparison)."),
            .integer("turn-consolidate-below", \.turnConsolidateBelow, .atLeast(0, "datagrams/s"),
                     help: "Below this many relayed datagrams per second in all, one relay engine thread carries every allocation (fewer wake-ups); above twice that they spread over the threads again; 0 never gathers (default \(turn.engineConsolidateBelow))."),
            .text("log-level", \.logLevel,
                  help: "trace, debug, info, notice, warning, error or critical (default \(NodeConfiguration.defaultLogLevel))."),
            .text("data-dir", \.dataDir, .notEmpty, help: "Directory of the signaling store (default $STATE_DIRECTORY under systemd, else $XDG_DATA_HOME/meshnode or ~/.local/share/meshnode)."),
            .number("heartbeat", \.heartbeat, .within(0.1...3600, "seconds"),
                    help: "Signaling heartbeat interval in seconds (default \(SignalingSettings.defaultHeartbeatSeconds))."),
            .text("node-key", \.nodeKey, .notEmpty,
                  help: "The node's Ed25519 identity for links (default <data-dir>/node-identity, made on first start)."),
            .list("link", \.link, .webSocketURL, help: "Keep a link to the node at this WebSocket URL, ws://HOST:PORT/ws (repeatable)."),
            .integer("max-connections", \.maxConnections, .atLeast(1),
                     help: "Connections held at once: WebSocket, TURN TCP/TLS and relay sockets together; more WebSockets are closed at once with 1013 Try Again Later (default: open-file limit minus a tenth, at least 512 less)."),
            .integer("max-connections-per-ip", \.maxConnectionsPerIP, .atLeast(1),
                     help: "WebSocket connections one address (an IPv6 /64) may hold at once; more are closed with 1013 (default \(SourceLimit.defaultMaximum))."),
            .number("login-timeout", \.loginTimeout, .within(1...3600, "seconds"),
                    help: "Seconds a WebSocket connection may stay open without logging in or linking (default \(SignalingSettings.defaultLoginTimeoutSeconds))."),
            .number("gossip-interval", \.gossipInterval, .within(0.1...3600, "seconds"),
                    help: "Seconds between node record refreshes over links (default \(SignalingSettings.defaultGossipIntervalSeconds); records expire after six intervals)."),
            .text("web-root", \.webRoot, .directory,
                  help: "Directory of the web page's files, for development (default: the page embedded in meshnode)."),
            .list("mesh-key", \.meshKey, .nodeKey,
                  help: "A closed mesh: take links and node records only from nodes with this Ed25519 key, base64 (repeatable; default: any key)."),
            // Secrets from files, so that they stay out of argv (/proc/PID/cmdline) and shell history.
            .text("turn-secret-file", \.turnSecretFile, .notEmpty,
                  help: "File holding the TURN REST shared secret (its first line), instead of turn-secret on the command line."),
            .text("user-file", \.userFile, .notEmpty,
                  help: "File of static TURN users, one NAME:PASSWORD a line (# comments), in addition to user."),
            // The signaling store's bounds (docs/protocol.md "Limits"); a write past one gets store-full.
            .integer("store-max-messages", \.storeMaxMessages, .atLeast(1),
                     help: "Undelivered chat messages the node stores in total (default \(store.messages))."),
            .integer("store-max-bytes", \.storeMaxBytes, .atLeast(65_536, "bytes"),
                     help: "Bytes of undelivered chat the node stores in total (default \(store.bytes))."),
            .integer("recipient-max-messages", \.recipientMaxMessages, .atLeast(1),
                     help: "Undelivered messages stored for one recipient (default \(store.recipientMessages))."),
            .integer("recipient-max-bytes", \.recipientMaxBytes, .atLeast(65_536, "bytes"),
                     help: "Bytes of undelivered messages stored for one recipient (default \(store.recipientBytes))."),
            .integer("room-max-messages", \.roomMaxMessages, .atLeast(1),
                     help: "Undelivered messages of one room, one per recipient (default \(store.roomMessages))."),
            .integer("room-max-bytes", \.roomMaxBytes, .atLeast(65_536, "bytes"),
                     help: "Bytes of undelivered messages of one room (default \(store.roomBytes))."),
            .integer("room-max-members", \.roomMaxMembers, .atLeast(2), help: "Members of one room (default \(store.roomMembers))."),
            .integer("store-max-rooms", \.storeMaxRooms, .atLeast(1), help: "Rooms on this node (default \(store.rooms))."),
            .integer("member-max-rooms", \.memberMaxRooms, .atLeast(1), help: "Rooms one name may be in (default \(store.memberRooms))."),
            .integer("room-history", \.roomHistory, .atLeast(1),
                     help: "Messages a room's history keeps for its members to page back through; the oldest go first (default \(store.roomHistory))."),
            .number("room-history-days", \.roomHistoryDays, .within(1...3650, "days"),
                    help: "Days a room message stays in the room's history (default \(Int(store.historyAge / 86_400)))."),
            .integer("link-max-memberships", \.linkMaxMemberships, .atLeast(1),
                     help: "Room memberships the peers of one linked node may hold here, all rooms together (default \(store.nodeMemberships))."),
            .integer("store-max-names", \.storeMaxNames, .atLeast(1),
                     help: "Names (and node addresses) the node binds to keys (default \(store.names)); new names beyond it are refused."),
            .number("message-expiry", \.messageExpiry, .within(1...3650, "days"),
                    help: "Days an undelivered message is kept before it is dropped unread (default \(Int(store.expiry / 86_400)))."),
            .text("room-rule", \.roomRule, .oneOf(RoomRule.allCases.map(\.rawValue)),
                  help: "Rule of a new room whose creator names none: open (anyone joins) or invite (owner's invitations only; default open)."),
            .integer("room-call-mesh-limit", \.roomCallMeshLimit, .within(2...8, "participants"),
                     help: "Participants of a peer-to-peer room call, each with a call to every other (default 4; docs/rooms.md)."),
            .flag("forwarder", \.forwarder,
                  help: "Forward room calls that grow past room-call-mesh-limit through this node (an SFU: each participant sends once, up to 20; docs/rooms.md). Costs CPU and bandwidth per participant."),
            .list("forward-for", \.forwardFor, .webSocketURL,
                  help: "Forward the room calls of the node at this WebSocket URL, ws://HOST:PORT/ws, through a session there under forwarder.<key id> (repeatable; that node must trust this node's key: forwarder-key, or dial-back; docs/rooms.md)."),
            .list("forwarder-key", \.forwarderKey, .nodeKey,
                  help: "Node key (base64) of a forwarding node whose session here may forward this node's room calls (repeatable; besides proven mesh nodes reachable by dial-back; docs/rooms.md)."),
            .text("cluster", \.cluster, .clusterURL,
                  help: "Cluster mode: share this node's names, rooms and chat with the other members in PostgreSQL, postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE (docs/cluster.md); needs member."),
            .text("member", \.member, .memberName,
                  help: "This process's name in the cluster: 1 to 32 of A-Z a-z 0-9 _ -, unique among the members (docs/cluster.md)."),
            .list("public-address", \.publicAddress, .authority,
                  help: "HOST:PORT clients reach this node at besides its bind addresses (a name, a proxy, a NAT; repeatable); logins signed for it are accepted."),
            .list("allow-origin", \.allowOrigin, .origin,
                  help: "Web origin (https://HOST[:PORT]) whose pages may open /ws, besides the page's own (repeatable; * allows any)."),
            .text("status-access", \.statusAccess, .oneOf(StatusAccess.Mode.allCases.map(\.rawValue)),
                  help: "Who may read /status, /metrics and /mesh: local (this host only, the default), public, or off."),
            .text("status-token-file", \.statusTokenFile, .notEmpty,
                  help: "File holding a bearer token (its first line) that also opens /status, /metrics and /mesh from elsewhere."),
            .number("name-expiry", \.nameExpiry, .within(1...36_500, "days"),
                    help: "Days a name is kept without a login, when it is in no room and nothing waits for it (default \(Int(store.nameExpiry / 86_400)))."),
            .integer("store-kept-ids", \.storeKeptIDs, .atLeast(1),
                     help: "Ids of delivered messages kept to recognise resends (default \(store.deliveredKept)); the oldest go first."),
            .integer("store-write-queue", \.storeWriteQueue, .atLeast(1),
                     help: "Writes (chat, acks, logins) that may wait for the store's disk (default \(store.writeQueue)); beyond it a write is refused with store-busy."),
            .flag("https", \.https,
                  help: "Serve the web page and /ws over HTTPS and WSS, with tls-cert and tls-key (shared with TURN over TLS; reloaded on SIGHUP) or else a self-signed certificate kept in data-dir."),
            .text("link-ca", \.linkCA, .notEmpty,
                  help: "PEM file of the CAs that vouch for the nodes of wss:// links (default: the system's); a link URL ending in #sha256=HEX pins one certificate instead."),
            .text("public-host", \.publicHost, .dnsName,
                  help: "The DNS name clients reach this node at: used in the STUN/TURN URLs handed out at login (turns: needs a name its certificate matches), the node's address for links and records, logins, and the self-signed certificate."),
            .list("external-ip", \.externalIP, .externalAddress,
                  help: "PUBLIC[/PRIVATE]: behind a 1:1 NAT (a cloud VM) relayed addresses and STUN/TURN URLs name PUBLIC while sockets bind PRIVATE (repeatable, one per family; without /PRIVATE it stands for every bind address of its family)."),
            .integer("http-redirect-port", \.httpRedirectPort, .port,
                     help: "With https: also listen for plain HTTP on this port (80 in production), answering only 301 redirects to the https:// URL of the same path at public-host (default: none)."),
            .flag("single-port", \.singlePort,
                  help: "Serve TURN over TLS on the HTTPS port too: page, WSS and relay on one TCP port (http-port, 443 in production) for networks that allow only outbound TCP 443. Needs https."),
        ]
    }()

    /// The setting named `name` (a flag without dashes, a YAML key).
    public static func setting(named name: String) -> NodeSetting? {
        byName[name]
    }

    private static let byName = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })

    /// Reads a YAML config file; unknown keys are an error so that typos do not pass silently.
    public static func load(yamlFile path: String) throws -> NodeSettings {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw NodeConfigurationError(key: "config", reason: "cannot read \(path): \(error.localizedDescription)")
        }
        return try parse(yaml: text, source: path)
    }

    /// Reads the settings of a YAML mapping whose keys are the names in ``all``. An unknown key
    /// or a value of the wrong kind is refused with the key's name.
    public static func parse(yaml text: String, source: String = "config") throws -> NodeSettings {
        let mapping: Yams.Node.Mapping
        do {
            // A file of comments only (the example config as installed) sets nothing.
            guard let composed = try Yams.compose(yaml: text) else { return NodeSettings() }
            guard let parsed = composed.mapping else {
                throw NodeConfigurationError(key: "config", reason: "\(source): expected a mapping of settings, one `key: value` a line")
            }
            mapping = parsed
        } catch let error as NodeConfigurationError {
            throw error
        } catch {
            throw NodeConfigurationError(key: "config", reason: "\(source): \(error)")
        }
        let entries = mapping.map { (key: $0.key.scalar?.string ?? "\($0.key)", value: $0.value) }
        if let unknown = entries.map(\.key).sorted().first(where: { byName[$0] == nil }) {
            throw NodeConfigurationError(key: unknown, reason: "\(source): unknown key")
        }
        var settings = NodeSettings()
        for (key, node) in entries {
            // Known: checked above.
            let setting = byName[key]!
            if let value = try setting.value(yaml: node, source: source) { setting.set(value, in: &settings) }
        }
        return settings
    }

    /// These settings with every unset value taken from `base` (flags over the file).
    public func overriding(_ base: NodeSettings) -> NodeSettings {
        var result = NodeSettings()
        for setting in Self.all { setting.merge(self, over: base, into: &result) }
        return result
    }

    /// Checks each set value against its setting's rule.
    func validate() throws {
        for setting in Self.all { try setting.check(self) }
    }
}

/// The node layer's errors.
public enum NodeLayer: ErrorLayer { public static let name = "NodeError" }

extension LayerError.Code where Layer == NodeLayer {
    /// A setting has a value the node cannot use, or is unknown.
    public static let invalidSetting = Self("invalidSetting")
    /// The config file cannot be read or is not a mapping of settings.
    public static let unreadableConfiguration = Self("unreadableConfiguration")
}

/// A setting that cannot be used: the layer's code and reason (``LayerError``'s shape) plus the
/// key, so that the CLI and tests can name the flag or YAML key to change.
public struct NodeConfigurationError: ReasonedError, CustomStringConvertible, Sendable {
    /// `invalidSetting`, or `unreadableConfiguration` for the file as a whole (key `config`).
    public var code: LayerError<NodeLayer>.Code { key == "config" ? .unreadableConfiguration : .invalidSetting }
    /// The flag name and YAML key of the setting.
    public var key: String
    public var reason: String

    public init(key: String, reason: String) {
        self.key = key
        self.reason = reason
    }

    public var description: String { "invalid setting '\(key)': \(reason)" }
}

/// Validated settings of a node.
public struct NodeConfiguration: Sendable {
    public var turn: TURNServerConfiguration
    public var httpPort: Int
    public var logLevel: Logger.Level
    /// Signaling: store, heartbeat, node key and links (NodeConfiguration+Signaling.swift).
    public var signaling: SignalingSettings
    /// The directory of the browser page (`web-root`); nil serves the page embedded in the binary.
    public var webRoot: String?
    /// Who may read `/status`, `/metrics` and `/mesh` (`status-access`, `status-token-file`).
    public var status: StatusAccess
    /// HTTPS and WSS on the web port (`https`); the certificate is `turn`'s tls-cert and tls-key.
    public var https: Bool
    /// `public-host`: the DNS name clients reach the node at (NodePublicIdentity).
    public var publicHost: String?
    /// `http-redirect-port`: a plain-HTTP listener that only redirects to HTTPS.
    public var httpRedirectPort: Int?
    /// TURN over TLS on the HTTPS port too (`single-port`; ``SharedPortChannel``).
    public var singlePort: Bool

    /// `http-port` when none is given.
    static let defaultHTTPPort = 8080
    /// `log-level` when none is given.
    static let defaultLogLevel = Logger.Level.info

    /// Applies the defaults of a node on localhost and checks every value: each against its
    /// setting's rule (``NodeSettings/all``), then what is parsed here.
    public init(_ settings: NodeSettings) throws {
        try settings.validate()
        var turn = TURNServerConfiguration()
        // The default is a node on localhost: 127.0.0.1, and ::1 where IPv6 is up.
        turn.bindAddresses = Self.hasIPv6Loopback ? ["127.0.0.1", "::1"] : ["127.0.0.1"]
        if let bind = settings.bind, !bind.isEmpty { turn.bindAddresses = bind }
        turn.port = settings.stunPort ?? turn.port
        // tls-port: -1 (the --no-tls flag) turns TLS off.
        if let tls = settings.tlsPort { turn.tlsPort = tls == -1 ? nil : tls }
        turn.tlsCertificatePath = settings.tlsCert
        turn.tlsKeyPath = settings.tlsKey
        if (settings.tlsCert == nil) != (settings.tlsKey == nil) {
            throw NodeConfigurationError(key: "tls-cert", reason: "tls-cert and tls-key go together")
        }
        httpPort = settings.httpPort ?? Self.defaultHTTPPort
        turn.realm = settings.realm ?? turn.realm
        for entry in settings.user ?? [] {
            let parts = entry.split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw NodeConfigurationError(key: "user", reason: "'\(entry)' is not NAME:PASSWORD")
            }
            turn.users[parts[0]] = parts[1]
        }
        if let file = settings.userFile {
            for line in try Self.secret(file, key: "user-file").split(whereSeparator: \.isNewline) {
                let entry = line.trimmingCharacters(in: .whitespaces)
                guard !entry.isEmpty, !entry.hasPrefix("#") else { continue }
                let parts = entry.split(separator: ":", maxSplits: 1).map(String.init)
                guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                    throw NodeConfigurationError(key: "user-file", reason: "a line of \(file) is not NAME:PASSWORD")
                }
                turn.users[parts[0]] = parts[1]
            }
        }
        if settings.turnSecret != nil, settings.turnSecretFile != nil {
            throw NodeConfigurationError(key: "turn-secret-file", reason: "give turn-secret or turn-secret-file, not both")
        }
        turn.restSecret = try settings.turnSecretFile.map { try Self.firstLine(of: $0, key: "turn-secret-file") } ?? settings.turnSecret
        turn.peerPolicy = PeerAddressPolicy(allow: try Self.cidrs(settings.allowPeer, key: "allow-peer"),
                                            deny: try Self.cidrs(settings.denyPeer, key: "deny-peer"))
        turn.relayAddresses = settings.relayIP ?? []
        // Checked by the setting's rule; one entry per private address, and at most one
        // family-wide entry per family, or which one applies would be a guess.
        let external = (settings.externalIP ?? []).compactMap(ExternalAddress.init)
        for (index, entry) in external.enumerated() where external[..<index].contains(where: {
            $0.local == entry.local && ($0.local != nil || $0.advertised.isIPv4 == entry.advertised.isIPv4)
        }) {
            throw NodeConfigurationError(key: "external-ip", reason: "'\(entry)' maps an address another entry maps already")
        }
        turn.externalAddresses = external
        if let range = settings.relayPorts {
            let parts = range.split(separator: "-").map { Int($0) }
            guard parts.count == 2, let low = parts[0], let high = parts[1], low >= 1024, low <= high, high <= 65_535 else {
                throw NodeConfigurationError(key: "relay-ports", reason: "'\(range)' is not LOW-HIGH within 1024-65535")
            }
            turn.relayPorts = low...high
        }
        turn.userQuota = settings.userQuota ?? turn.userQuota
        turn.totalQuota = settings.totalQuota ?? turn.totalQuota
        turn.maxBitsPerSecond = settings.maxBps
        turn.threads = settings.threads ?? turn.threads
        turn.enableRFC5780 = settings.rfc5780 ?? false
        turn.nonceLifetime = settings.nonceLifetime ?? turn.nonceLifetime
        turn.maxStreamConnections = settings.turnMaxConnections ?? turn.maxStreamConnections
        turn.maxStreamConnectionsPerSource = settings.turnMaxConnectionsPerIP ?? turn.maxStreamConnectionsPerSource
        turn.segmentationOffload = settings.turnGSO ?? false
        turn.relayEngine = !(settings.turnNIORelay ?? false)
        if let below = settings.turnConsolidateBelow { turn.engineConsolidateBelow = below }
        if let seconds = settings.turnIdleTimeout { turn.streamIdleTimeout = .milliseconds(Int64((seconds * 1000).rounded())) }
        if let level = settings.logLevel {
            guard let parsed = Logger.Level(rawValue: level) else {
                throw NodeConfigurationError(key: "log-level", reason: "'\(level)' is not one of trace, debug, info, notice, warning, error, critical")
            }
            logLevel = parsed
        } else {
            logLevel = Self.defaultLogLevel
        }
        self.turn = turn
        signaling = SignalingSettings(settings)
        webRoot = settings.webRoot
        status = StatusAccess(mode: settings.statusAccess.flatMap(StatusAccess.Mode.init(rawValue:)) ?? .local,
                              token: try settings.statusTokenFile.map { try Self.firstLine(of: $0, key: "status-token-file") })
        https = settings.https ?? false
        publicHost = settings.publicHost?.lowercased()
        httpRedirectPort = settings.httpRedirectPort
        if httpRedirectPort != nil, !https {
            throw NodeConfigurationError(key: "http-redirect-port", reason: "redirects go to HTTPS: give https too")
        }
        singlePort = settings.singlePort ?? false
        if singlePort && !https {
            throw NodeConfigurationError(key: "single-port", reason: "needs https: TURN on the web port is TURN over TLS, told from HTTP inside TLS")
        }
    }

    /// The text of a secret file (`--*-file` settings).
    static func secret(_ path: String, key: String) throws -> String {
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw NodeConfigurationError(key: key, reason: "cannot read \(path): \(error.localizedDescription)")
        }
    }

    /// The first line of a secret file, without its line break; an empty one is refused.
    static func firstLine(of path: String, key: String) throws -> String {
        let line = try secret(path, key: key).split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        guard !line.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw NodeConfigurationError(key: key, reason: "\(path) is empty: its first line is the secret")
        }
        return line
    }

    /// Whether this machine has ::1 (IPv6 can be disabled in containers).
    static let hasIPv6Loopback: Bool = {
        let devices = (try? System.enumerateDevices()) ?? []
        return devices.contains { $0.address.flatMap(IPAddress.init) == IPAddress.v6(0, 1) }
    }()

    private static func cidrs(_ values: [String]?, key: String) throws -> [CIDR] {
        try (values ?? []).map { text in
            guard let cidr = CIDR(string: text) else { throw NodeConfigurationError(key: key, reason: "'\(text)' is not ADDRESS/PREFIX") }
            return cidr
        }
    }
}
