public import MeshCore
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
    /// `--external-ip`: the public addresses of a 1:1 NAT in front of the server. Relayed
    /// addresses (XOR-RELAYED-ADDRESS) name the public address while the relay socket binds the
    /// private one.
    public var externalAddresses: [ExternalAddress] = []
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
    /// TCP and TLS connections held at once (RFC 8656 §3.1: each is a file descriptor for as
    /// long as it is open); more are closed as soon as they are accepted.
    public var maxStreamConnections: Int = 4_096
    /// TCP and TLS connections held at once from one source, an IPv4 address or an IPv6 /64.
    /// Large enough for an office behind one NAT whose browsers fall back to TURN over TCP and
    /// TLS (two connections per browser and TURN server), small enough that one host cannot
    /// take ``maxStreamConnections``.
    public var maxStreamConnectionsPerSource: Int = 100
    /// A TCP or TLS connection that holds no allocation is closed this long after it opened, or
    /// after its allocation ended, whatever it sends meanwhile: a TURN client allocates within
    /// a few round trips (RFC 8656 §7.1), and Bindings must not keep a connection. A connection
    /// with an allocation lives as long as the allocation (RFC 8656 §3.1), and an RFC 6062 data
    /// connection as long as its peer connection.
    public var streamIdleTimeout: TimeAmount = .seconds(20)
    /// The node's connection budget, shared with the signaling server's WebSocket connections:
    /// every TCP and TLS connection and every relay socket takes a slot. Nil: the server has a
    /// budget of its own, ``ConnectionBudget/defaultMaximum(openFileLimit:)``.
    public var connectionBudget: ConnectionBudget?
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
    /// Event loop threads, one per core by default; UDP listeners are spread over them with
    /// SO_REUSEPORT, and each allocation lives on the loop its client reached.
    public var threads: Int = System.coreCount
    /// Relayed datagrams of one size to one destination leave in one segmented write (UDP
    /// GSO, Linux `UDP_SEGMENT`; ``DatagramOutbox``). Off by default: on hosts whose routes to
    /// clients or peers go through IPsec or a device without checksum offload the kernel
    /// refuses segmented writes (EIO), and NIO closes a socket whose write fails that way —
    /// a listener included. An operator who knows the routes turns it on (`--turn-gso`).
    public var segmentationOffload = false
    /// UDP allocations of UDP clients are relayed by a ``RelayEngine`` thread per event loop
    /// (batched system calls on its own sockets, outside NIO's pipeline) where the system has
    /// epoll; off, NIO channels relay them (`--turn-nio-relay`, for comparison).
    public var relayEngine = true
    /// While all relay engines together receive fewer datagrams per second than this, the
    /// allocations of every loop are relayed by one engine thread (fewer wake-ups per datagram);
    /// when that engine receives more than twice this, each allocation goes back to its loop's
    /// engine (``RelayEngineGroup``). 0 keeps every allocation on its own loop's engine.
    /// `--turn-consolidate-below`.
    public var engineConsolidateBelow = 100_000
    public var software: String = "meshnode"

    public init() {}
}
