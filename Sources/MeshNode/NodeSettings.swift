import Foundation
import ICE
import Logging
import NIOCore
import NIOPosix
import Yams
import STUN
import TURNServer

/// The settings of `meshnode serve`, as flags or as keys of a YAML config file. The keys are
/// the flag names without dashes in front; a flag given on the command line wins over the file.
public struct NodeSettings: Codable, Sendable, Equatable {
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
    public var dataDir: String?
    public var heartbeat: Double?
    public var nodeKey: String?
    public var link: [String]?
    public var maxConnections: Int?
    public var gossipInterval: Double?
    public var webRoot: String?

    enum CodingKeys: String, CodingKey {
        case bind, realm, user, threads, rfc5780
        case stunPort = "stun-port", tlsPort = "tls-port", tlsCert = "tls-cert", tlsKey = "tls-key"
        case httpPort = "http-port", turnSecret = "turn-secret", allowPeer = "allow-peer", denyPeer = "deny-peer"
        case relayIP = "relay-ip", relayPorts = "relay-ports", userQuota = "user-quota", totalQuota = "total-quota"
        case maxBps = "max-bps", logLevel = "log-level", nonceLifetime = "nonce-lifetime"
        case dataDir = "data-dir", heartbeat, nodeKey = "node-key", link, webRoot = "web-root"
        case maxConnections = "max-connections", gossipInterval = "gossip-interval"
    }

    public init() {}

    /// Reads a YAML config file; unknown keys are an error so that typos do not pass silently.
    public static func load(yamlFile path: String) throws -> NodeSettings {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw NodeConfigurationError(key: "config", reason: "cannot read \(path): \(error.localizedDescription)")
        }
        return try parse(yaml: text, source: path)
    }

    public static func parse(yaml text: String, source: String = "config") throws -> NodeSettings {
        do {
            if let mapping = try Yams.load(yaml: text) as? [String: Any] {
                let known = Set(["bind", "realm", "user", "threads", "rfc5780", "stun-port", "tls-port", "tls-cert", "tls-key",
                                 "http-port", "turn-secret", "allow-peer", "deny-peer", "relay-ip", "relay-ports", "user-quota",
                                 "total-quota", "max-bps", "log-level", "nonce-lifetime", "data-dir", "heartbeat", "node-key", "link", "web-root",
                                 "max-connections", "gossip-interval"])
                if let unknown = mapping.keys.sorted().first(where: { !known.contains($0) }) {
                    throw NodeConfigurationError(key: unknown, reason: "\(source): unknown key")
                }
            }
            return try YAMLDecoder().decode(NodeSettings.self, from: text)
        } catch let error as NodeConfigurationError {
            throw error
        } catch {
            throw NodeConfigurationError(key: "config", reason: "\(source): \(error)")
        }
    }

    /// These settings with every unset value taken from `base` (flags over the file).
    public func overriding(_ base: NodeSettings) -> NodeSettings {
        let merged = base
        var result = self
        result.bind = bind ?? merged.bind
        result.stunPort = stunPort ?? merged.stunPort
        result.tlsPort = tlsPort ?? merged.tlsPort
        result.tlsCert = tlsCert ?? merged.tlsCert
        result.tlsKey = tlsKey ?? merged.tlsKey
        result.httpPort = httpPort ?? merged.httpPort
        result.realm = realm ?? merged.realm
        result.user = user ?? merged.user
        result.turnSecret = turnSecret ?? merged.turnSecret
        result.allowPeer = allowPeer ?? merged.allowPeer
        result.denyPeer = denyPeer ?? merged.denyPeer
        result.relayIP = relayIP ?? merged.relayIP
        result.relayPorts = relayPorts ?? merged.relayPorts
        result.userQuota = userQuota ?? merged.userQuota
        result.totalQuota = totalQuota ?? merged.totalQuota
        result.maxBps = maxBps ?? merged.maxBps
        result.logLevel = logLevel ?? merged.logLevel
        result.threads = threads ?? merged.threads
        result.rfc5780 = rfc5780 ?? merged.rfc5780
        result.nonceLifetime = nonceLifetime ?? merged.nonceLifetime
        result.dataDir = dataDir ?? merged.dataDir
        result.heartbeat = heartbeat ?? merged.heartbeat
        result.nodeKey = nodeKey ?? merged.nodeKey
        result.link = link ?? merged.link
        result.maxConnections = maxConnections ?? merged.maxConnections
        result.gossipInterval = gossipInterval ?? merged.gossipInterval
        result.webRoot = webRoot ?? merged.webRoot
        return result
    }
}

/// A setting that cannot be used, named by its key.
public struct NodeConfigurationError: Error, CustomStringConvertible, Sendable {
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
    /// The directory of the browser page (`web-root`, default: `web/` of the source tree).
    public var webRoot: String

    /// Applies the defaults of a node on localhost and checks every value.
    public init(_ settings: NodeSettings) throws {
        var turn = TURNServerConfiguration()
        // The default is a node on localhost: 127.0.0.1, and ::1 where IPv6 is up.
        turn.bindAddresses = Self.hasIPv6Loopback ? ["127.0.0.1", "::1"] : ["127.0.0.1"]
        if let bind = settings.bind, !bind.isEmpty {
            for host in bind where IPAddress(string: host) == nil {
                throw NodeConfigurationError(key: "bind", reason: "\(host) is not a numeric IP address")
            }
            turn.bindAddresses = bind
        }
        turn.port = try Self.port(settings.stunPort, key: "stun-port") ?? turn.port
        // tls-port: -1 (the --no-tls flag) turns TLS off.
        if let tls = settings.tlsPort { turn.tlsPort = tls == -1 ? nil : try Self.port(tls, key: "tls-port") }
        turn.tlsCertificatePath = settings.tlsCert
        turn.tlsKeyPath = settings.tlsKey
        if (settings.tlsCert == nil) != (settings.tlsKey == nil) {
            throw NodeConfigurationError(key: "tls-cert", reason: "tls-cert and tls-key go together")
        }
        httpPort = try Self.port(settings.httpPort, key: "http-port") ?? 8080
        if let realm = settings.realm {
            guard !realm.isEmpty, realm.utf8.count < 763 else { throw NodeConfigurationError(key: "realm", reason: "must be 1 to 762 bytes") }
            turn.realm = realm
        }
        for entry in settings.user ?? [] {
            let parts = entry.split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw NodeConfigurationError(key: "user", reason: "'\(entry)' is not NAME:PASSWORD")
            }
            turn.users[parts[0]] = parts[1]
        }
        if let secret = settings.turnSecret {
            guard !secret.isEmpty else { throw NodeConfigurationError(key: "turn-secret", reason: "must not be empty") }
            turn.restSecret = secret
        }
        turn.peerPolicy = PeerAddressPolicy(allow: try Self.cidrs(settings.allowPeer, key: "allow-peer"),
                                            deny: try Self.cidrs(settings.denyPeer, key: "deny-peer"))
        for ip in settings.relayIP ?? [] where IPAddress(string: ip) == nil {
            throw NodeConfigurationError(key: "relay-ip", reason: "\(ip) is not a numeric IP address")
        }
        turn.relayAddresses = settings.relayIP ?? []
        if let range = settings.relayPorts {
            let parts = range.split(separator: "-").map { Int($0) }
            guard parts.count == 2, let low = parts[0], let high = parts[1], low >= 1024, low <= high, high <= 65_535 else {
                throw NodeConfigurationError(key: "relay-ports", reason: "'\(range)' is not LOW-HIGH within 1024-65535")
            }
            turn.relayPorts = low...high
        }
        if let q = settings.userQuota {
            guard q >= 1 else { throw NodeConfigurationError(key: "user-quota", reason: "must be at least 1") }
            turn.userQuota = q
        }
        if let q = settings.totalQuota {
            guard q >= 1 else { throw NodeConfigurationError(key: "total-quota", reason: "must be at least 1") }
            turn.totalQuota = q
        }
        if let bps = settings.maxBps {
            guard bps >= 8_000 else { throw NodeConfigurationError(key: "max-bps", reason: "must be at least 8000 bits/s") }
            turn.maxBitsPerSecond = bps
        }
        if let threads = settings.threads {
            guard (1...64).contains(threads) else { throw NodeConfigurationError(key: "threads", reason: "must be 1 to 64") }
            turn.threads = threads
        }
        turn.enableRFC5780 = settings.rfc5780 ?? false
        if let lifetime = settings.nonceLifetime {
            guard (1...86_400).contains(lifetime) else { throw NodeConfigurationError(key: "nonce-lifetime", reason: "must be 1 to 86400 seconds") }
            turn.nonceLifetime = lifetime
        }
        if let level = settings.logLevel {
            guard let parsed = Logger.Level(rawValue: level) else {
                throw NodeConfigurationError(key: "log-level", reason: "'\(level)' is not one of trace, debug, info, notice, warning, error, critical")
            }
            logLevel = parsed
        } else {
            logLevel = .info
        }
        self.turn = turn
        signaling = try SignalingSettings(settings)
        if let root = settings.webRoot {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw NodeConfigurationError(key: "web-root", reason: "\(root) is not a directory")
            }
            webRoot = root
        } else {
            webRoot = WebRoot.defaultDirectory
        }
    }

    /// Whether this machine has ::1 (IPv6 can be disabled in containers).
    static let hasIPv6Loopback: Bool = {
        let devices = (try? System.enumerateDevices()) ?? []
        return devices.contains { $0.address.flatMap(IPAddress.init) == IPAddress.v6(0, 1) }
    }()

    private static func port(_ value: Int?, key: String) throws -> Int? {
        guard let value else { return nil }
        guard (0...65_535).contains(value) else { throw NodeConfigurationError(key: key, reason: "\(value) is not a port") }
        return value
    }

    private static func cidrs(_ values: [String]?, key: String) throws -> [CIDR] {
        try (values ?? []).map { text in
            guard let cidr = CIDR(string: text) else { throw NodeConfigurationError(key: key, reason: "'\(text)' is not ADDRESS/PREFIX") }
            return cidr
        }
    }
}
