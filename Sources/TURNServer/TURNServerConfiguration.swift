import NIOCore

/// Everything a STUN/TURN server needs to know; `meshnode serve` fills it from flags and the
/// config file.
public struct TURNServerConfiguration: Sendable {
    /// Addresses to listen on (UDP and TCP on `port`, TLS on `tlsPort`).
    public var bindAddresses: [String] = ["127.0.0.1", "::1"]
    public var port: Int = 3478
    /// TLS listener port; nil disables TLS.
    public var tlsPort: Int? = 5349
    /// PEM certificate chain and key for TLS; a self-signed certificate is made when absent.
    public var tlsCertificatePath: String?
    public var tlsKeyPath: String?
    /// Addresses relayed transport addresses are taken from. Empty: the bind addresses that are
    /// not wildcards.
    public var relayAddresses: [String] = []
    public var relayPorts: ClosedRange<Int> = 49_152...65_535
    public var realm: String = "meshnode"
    /// Static long-term users (name → password).
    public var users: [String: String] = [:]
    /// Shared secret of the TURN REST API form; nil disables it.
    public var restSecret: String?
    /// Other credentials, looked up after the static users and before the REST secret: the
    /// password for a username, or nil when the username is not of its kind (the mesh's
    /// credentials issued by other nodes, docs/mesh.md). Called on the event loop: it must be fast.
    public var credentialResolver: (@Sendable (String) -> String?)?
    public var peerPolicy = PeerAddressPolicy()
    /// Maximum allocations one username may hold at once (RFC 8656 §7.2: 486).
    public var userQuota: Int = 10
    /// Maximum allocations the server holds at once (486).
    public var totalQuota: Int = 10_000
    /// Relayed bits per second per allocation and direction; nil is unlimited.
    public var maxBitsPerSecond: Int?
    /// How long a nonce stays valid before a request earns 438 Stale Nonce.
    public var nonceLifetime: Int = 600
    /// RFC 8656 §2: default and maximum allocation lifetime.
    public var defaultLifetime: Int = 600
    public var maximumLifetime: Int = 3_600
    /// RFC 5780 answers (OTHER-ADDRESS, CHANGE-REQUEST) only when enabled: they make a server
    /// a better reflector.
    public var enableRFC5780 = false
    /// Event loop threads; UDP listeners are spread over them with SO_REUSEPORT.
    public var threads: Int = 1
    public var software: String = "meshnode"

    public init() {}
}
