import Foundation
/// Bodies of the login exchange (docs/protocol.md, "Login"): `challenge` → `login` → `welcome`.

/// `challenge`, node → client: a fresh nonce to sign. Sent on connect and after a failed login.
public struct ChallengeBody: Codable, Sendable, Equatable {
    /// 32 random bytes, base64.
    public var nonce: String
    /// Protocol version the node speaks (1).
    public var version: Int

    public init(nonce: String, version: Int = 1) {
        self.nonce = nonce
        self.version = version
    }
}

/// `login`, client → node: the name, the Ed25519 public key, the node as the client dialled it,
/// and the signature of `LoginBody.signedText(nonce:name:node:)` under that key.
public struct LoginBody: Codable, Sendable, Equatable {
    public var name: String
    /// 32-byte Ed25519 public key, base64.
    public var key: String
    /// The node's address as the client dialled it: `host:port` of the WebSocket URL, the port
    /// always written (`LoginBody.authority(of:)`). The node accepts only its own addresses, so
    /// a login made for one node cannot be relayed to another.
    public var node: String
    /// 64-byte Ed25519 signature, base64.
    public var sig: String

    public init(name: String, key: String, node: String, sig: String) {
        self.name = name
        self.key = key
        self.node = node
        self.sig = sig
    }

    /// The exact UTF-8 text a client signs to log in: a context line, the nonce, the name and
    /// the node it dialled.
    public static func signedText(nonce: String, name: String, node: String) -> String {
        "meshnode.v1 login\n\(nonce)\n\(name)\n\(node)"
    }

    /// `host:port` of a WebSocket or HTTP URL as a login names it: the host in lower case (an
    /// IPv6 address in brackets), the port always present (80 for ws/http, 443 for wss/https).
    public static func authority(of url: String) -> String? {
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), let host = parsed.host, !host.isEmpty else { return nil }
        let port = parsed.port ?? (scheme == "wss" || scheme == "https" ? 443 : 80)
        return authority(host: host, port: port)
    }

    /// `host:port` in the form logins use.
    public static func authority(host: String, port: Int) -> String {
        var bare = host.lowercased()
        if bare.hasPrefix("["), bare.hasSuffix("]") { bare = String(bare.dropFirst().dropLast()) }
        return (bare.contains(":") ? "[\(bare)]" : bare) + ":\(port)"
    }

    /// A `host:port` or `host` written by a user (a setting), in the form logins use; nil
    /// without a port.
    public static func authority(_ text: String) -> String? {
        authority(of: "ws://" + text).flatMap { URL(string: "ws://" + text)?.port == nil ? nil : $0 }
    }
}

/// One entry of `welcome.iceServers`, shaped like WebRTC's `RTCIceServer`.
public struct ICEServer: Codable, Sendable, Equatable {
    public var urls: [String]
    public var username: String?
    public var credential: String?

    public init(urls: [String], username: String? = nil, credential: String? = nil) {
        self.urls = urls
        self.username = username
        self.credential = credential
    }
}

/// `welcome`, node → client: the login succeeded.
public struct WelcomeBody: Codable, Sendable, Equatable {
    public var name: String
    public var key: String
    /// Heartbeat interval in seconds: the client pings at least this often; the node drops a
    /// connection silent for two intervals.
    public var heartbeat: Double
    /// STUN and TURN servers with short-lived TURN REST credentials (RTCIceServer form).
    public var iceServers: [ICEServer]
    /// For a linked device: the name's owner key (which peers pin) and its endorsement of
    /// `key` (docs/protocol.md "Devices"); absent for the owner itself.
    public var owner: String?
    public var endorsement: String?
    /// The node's own Ed25519 key (docs/protocol.md "Login"): a client pins it for the node's
    /// address and checks the node's forwarder assignments with it.
    public var nodeKey: String?
    /// In cluster mode: the `/ws` URLs of the node's members (docs/cluster.md), which a client
    /// given one of them fails over to.
    public var members: [String]?

    public init(name: String, key: String, heartbeat: Double, iceServers: [ICEServer]) {
        self.name = name
        self.key = key
        self.heartbeat = heartbeat
        self.iceServers = iceServers
    }
}

/// The body of `ping` and `pong`: empty.
public struct EmptyBody: Codable, Sendable, Equatable {
    public init() {}
}
