import ArgumentParser
import Foundation
import Logging
import MeshNode
import STUN
import Signaling

/// `meshnode serve`: a node with STUN/TURN, the web page and metrics.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a node: STUN/TURN server, web page and metrics.",
        discussion: """
        With no options the node listens on localhost only (127.0.0.1 and ::1): STUN/TURN on \
        UDP and TCP 3478 and TLS 5349, HTTP on 8080. A YAML file given with --config sets the \
        same keys as the flags (for example `stun-port: 3478`, `user: [alice:secret]`); flags win.
        """
    )

    @Option(name: .customLong("bind"), help: "Address to listen on (repeatable). Default: 127.0.0.1 and ::1.")
    var bind: [String] = []
    @Option(help: "STUN/TURN port for UDP and TCP (default 3478; 0 picks a free port).")
    var stunPort: Int?
    @Option(help: "STUN/TURN over TLS port (default 5349; 0 picks a free port).")
    var tlsPort: Int?
    @Flag(help: "Do not listen for TLS.")
    var noTLS = false
    @Option(help: "PEM certificate chain for TLS (default: a fresh self-signed certificate).")
    var tlsCert: String?
    @Option(help: "PEM private key for TLS.")
    var tlsKey: String?
    @Option(help: "HTTP port for the web page and /metrics (default 8080).")
    var httpPort: Int?
    @Option(help: "Realm of the long-term credentials (default meshnode).")
    var realm: String?
    @Option(name: .customLong("user"), help: "A static TURN user NAME:PASSWORD (repeatable).")
    var users: [String] = []
    @Option(help: "Shared secret for TURN REST credentials (username EXPIRY:ID, password base64(HMAC-SHA1(secret, username))).")
    var turnSecret: String?
    @Option(name: .customLong("allow-peer"), help: "Relay to this CIDR even if private or loopback (repeatable).")
    var allowPeer: [String] = []
    @Option(name: .customLong("deny-peer"), help: "Never relay to this CIDR (repeatable; beats allow-peer).")
    var denyPeer: [String] = []
    @Option(name: .customLong("relay-ip"), help: "Address relayed ports are opened on (repeatable; default: the bind addresses).")
    var relayIP: [String] = []
    @Option(help: "Relay port range LOW-HIGH (default 49152-65535).")
    var relayPorts: String?
    @Option(help: "Maximum allocations per user (default 10).")
    var userQuota: Int?
    @Option(help: "Maximum allocations in total (default 10000).")
    var totalQuota: Int?
    @Option(help: "Bandwidth cap per allocation and direction in bits per second (default: none).")
    var maxBps: Int?
    @Option(help: "Event loop threads for STUN/TURN (default 1).")
    var threads: Int?
    @Flag(help: "Answer RFC 5780 NAT behaviour discovery requests (off by default: it helps reflection attacks).")
    var rfc5780 = false
    @Option(help: "Seconds a nonce stays valid before requests get 438 Stale Nonce (default 600).")
    var nonceLifetime: Int?
    @Option(help: "trace, debug, info, notice, warning, error or critical (default info).")
    var logLevel: String?
    @Option(help: "Directory of the signaling store (default ~/.local/share/meshnode).")
    var dataDir: String?
    @Option(help: "Signaling heartbeat interval in seconds (default 15).")
    var heartbeat: Double?
    @Option(help: "The node's Ed25519 identity for links (default <data-dir>/node-identity, made on first start).")
    var nodeKey: String?
    @Option(name: .customLong("link"), help: "Keep a link to the node at this WebSocket URL, ws://HOST:PORT/ws (repeatable).")
    var links: [String] = []
    @Option(help: "WebSocket connections held at once; more are closed at once with 1013 Try Again Later (default: open-file limit minus a tenth, at least 512 less).")
    var maxConnections: Int?
    @Option(help: "Seconds between node record refreshes over links (default 5; records expire after six intervals).")
    var gossipInterval: Double?
    @Option(help: "Directory of the web page's files (default: web/ of the source tree meshnode was built from).")
    var webRoot: String?
    @Option(help: "YAML config file with the same keys as these flags.")
    var config: String?

    func run() async throws {
        var flags = NodeSettings()
        flags.bind = bind.isEmpty ? nil : bind
        flags.stunPort = stunPort
        flags.tlsPort = noTLS ? -1 : tlsPort
        flags.tlsCert = tlsCert
        flags.tlsKey = tlsKey
        flags.httpPort = httpPort
        flags.realm = realm
        flags.user = users.isEmpty ? nil : users
        flags.turnSecret = turnSecret
        flags.allowPeer = allowPeer.isEmpty ? nil : allowPeer
        flags.denyPeer = denyPeer.isEmpty ? nil : denyPeer
        flags.relayIP = relayIP.isEmpty ? nil : relayIP
        flags.relayPorts = relayPorts
        flags.userQuota = userQuota
        flags.totalQuota = totalQuota
        flags.maxBps = maxBps
        flags.threads = threads
        flags.rfc5780 = rfc5780 ? true : nil
        flags.logLevel = logLevel
        flags.nonceLifetime = nonceLifetime
        flags.dataDir = dataDir
        flags.heartbeat = heartbeat
        flags.nodeKey = nodeKey
        flags.link = links.isEmpty ? nil : links
        flags.maxConnections = maxConnections
        flags.gossipInterval = gossipInterval
        flags.webRoot = webRoot

        let configuration: NodeConfiguration
        do {
            let file = try config.map(NodeSettings.load(yamlFile:)) ?? NodeSettings()
            configuration = try NodeConfiguration(flags.overriding(file))
        } catch let error as NodeConfigurationError {
            throw ValidationError(error.description)
        }
        let level = configuration.logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "meshnode")
        let node = Node(configuration: configuration, logger: logger)
        try await node.run { addresses in
            var lines = ["meshnode is running.", "  web page: \(addresses.web)", "  metrics:  \(addresses.metrics)"]
            lines += addresses.turn.map { "  stun/turn: \($0)" }
            print(lines.joined(separator: "\n"))
            fflush(nil)
        }
    }
}
