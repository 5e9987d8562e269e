import Foundation
import Logging
import MeshCore
import NIOCore
import NIOPosix
import Synchronization
import STUN

/// State every event loop of the server shares: configuration, credentials, quotas, the
/// relay port pool and RFC 6062 connections waiting for their ConnectionBind.
final class TURNShared: Sendable {
    let config: TURNServerConfiguration
    let nonces: NonceIssuer
    let quota: AllocationQuota
    /// The node's connection budget (``TURNServerConfiguration/connectionBudget``).
    let budget: ConnectionBudget
    /// Caps on TCP and TLS connections, counted in ``budget``.
    let streamGate: StreamConnectionGate
    let ports: RelayPortPool
    let metrics = TURNMetrics()
    let logger: Logger
    let relayIPv4: IPAddress?
    let relayIPv6: IPAddress?
    let pendingConnections = Mutex<[UInt32: PendingPeerConnection]>([:])
    /// The server's own addresses, which no allocation relays to: the IPs are known from the
    /// configuration, the listener ports once the listeners are bound (port 0 picks).
    let ownIPs: Set<IPAddress>
    let listenerPorts = Mutex<Set<Int>>([])
    /// USERHASH → static user, computed once (RFC 8489 §14.4) instead of per request.
    private let usersByHash: [[UInt8]: String]
    /// UDP listeners by local address, for answering RFC 5780 CHANGE-REQUESTs from another
    /// address or port. Filled only when RFC 5780 is enabled.
    let udpListeners = Mutex<[SocketAddress: Channel]>([:])
    /// The loops' relay engines, between which allocations move with the load.
    let engines: RelayEngineGroup

    init(config: TURNServerConfiguration, relayIPv4: IPAddress?, relayIPv6: IPAddress?, logger: Logger) {
        self.config = config
        self.engines = RelayEngineGroup(consolidateBelow: config.engineConsolidateBelow)
        self.nonces = NonceIssuer(lifetime: config.nonceLifetime)
        let budget = config.connectionBudget ?? ConnectionBudget(maximum: ConnectionBudget.defaultMaximum())
        self.budget = budget
        self.quota = AllocationQuota(userLimit: config.userQuota, totalLimit: config.totalQuota, budget: budget)
        self.streamGate = StreamConnectionGate(maximum: config.maxStreamConnections,
                                               maximumPerSource: config.maxStreamConnectionsPerSource, budget: budget)
        self.ports = RelayPortPool(range: config.relayPorts)
        self.relayIPv4 = relayIPv4
        self.relayIPv6 = relayIPv6
        // The public side of a 1:1 NAT is the server too: relaying to it would loop back in.
        self.ownIPs = Self.ownIPs(config: config, relays: [relayIPv4, relayIPv6].compactMap { $0 } + config.externalAddresses.map(\.advertised))
        self.logger = logger
        self.usersByHash = Dictionary(config.users.keys.map { (LongTermCredentials.userhash(username: $0, realm: config.realm), $0) },
                                      uniquingKeysWith: { first, _ in first })
    }

    /// The address a relay of `family` is opened on for a client that reached the listener at
    /// `server`: that listener's own address when it is of the family and no `relay-ip` is set
    /// (each bind address relays on itself, RFC 6156 §4 for IPv6), else the server's relay
    /// address of the family; nil when it has none.
    func relayIP(family: STUNAddressFamily, reached server: SocketAddress) -> IPAddress? {
        let wanted = family == .ipv6 ? relayIPv6 : relayIPv4
        guard config.relayAddresses.isEmpty, let reached = IPAddress(server), reached != .v4(0), reached != .v6(0, 0),
              reached.isIPv4 == (family != .ipv6) else { return wanted }
        return reached
    }

    /// The relayed transport address as clients and peers see it (``ExternalAddress``).
    func advertised(_ relay: SocketAddress) -> SocketAddress {
        guard !config.externalAddresses.isEmpty, let ip = IPAddress(relay), let port = relay.port else { return relay }
        return ExternalAddress.advertised(ip, in: config.externalAddresses).socketAddress(port: port)
    }

    /// What a username proves once its password checks out: the password, and the identity
    /// quotas count it under.
    struct Credential {
        var password: String
        /// A static user's name; for the time-limited `EXPIRY:ID` forms (TURN REST and the
        /// mesh's credentials) the `ID` part, which stays the same from one login to the next:
        /// a fresh username must not bring a fresh quota.
        var identity: String
    }

    /// The credential of a user: a static user, a resolver's (mesh) username, or a TURN REST
    /// username that has not expired.
    func credential(for username: String, now: Date = Date()) -> Credential? {
        if let password = config.users[username] { return Credential(password: password, identity: username) }
        if let resolver = config.credentialResolver, let password = resolver(username) {
            return Credential(password: password, identity: TURNRESTCredentials.identity(ofUsername: username) ?? username)
        }
        if let secret = config.restSecret, let expiry = TURNRESTCredentials.expiry(ofUsername: username),
           expiry > Int(now.timeIntervalSince1970), let identity = TURNRESTCredentials.identity(ofUsername: username) {
            return Credential(password: TURNRESTCredentials.password(secret: secret, username: username), identity: identity)
        }
        return nil
    }

    /// The relay and bind addresses; a wildcard bind address stands for every address of the
    /// machine's interfaces of its family.
    static func ownIPs(config: TURNServerConfiguration, relays: [IPAddress]) -> Set<IPAddress> {
        var ips = Set(relays)
        let devices = (try? System.enumerateDevices()) ?? []
        for host in config.bindAddresses {
            guard let ip = IPAddress(string: host) else { continue }
            if ip == .v4(0) || ip == .v6(0, 0) {
                ips.formUnion(devices.compactMap { $0.address.flatMap(IPAddress.init) }.filter { $0.isIPv4 == ip.isIPv4 })
            } else {
                ips.insert(ip)
            }
        }
        return ips
    }

    /// Why a peer is refused as one of the server's own addresses, or nil (cheap when the IP is
    /// not one of them, as it almost always is: it runs for every Send indication).
    func ownAddressRefusal(_ peer: SocketAddress) -> String? {
        guard let ip = IPAddress(peer), let port = peer.port else { return nil }
        return ownAddressRefusal(ip: ip, port: port)
    }

    /// ``ownAddressRefusal(_:)`` for an address already parsed (the Send path has it).
    func ownAddressRefusal(ip: IPAddress, port: Int) -> String? {
        let embedded = PeerAddressPolicy.embeddedIPv4(ip)
        guard ownIPs.contains(ip) || embedded.map(ownIPs.contains) == true else { return nil }
        let own = OwnAddresses(ips: ownIPs, listenerPorts: listenerPorts.withLock { $0 }, relayPorts: config.relayPorts)
        return config.peerPolicy.ownAddressRefusal(ip: ip, port: port, own: own)
    }

    /// RFC 5780 §4.1: the address that differs from `local` in IP and port, from which a
    /// CHANGE-REQUEST can be answered; nil when the server has no second address.
    func otherAddress(of local: SocketAddress) -> SocketAddress? {
        guard let ip = IPAddress(local), let port = local.port else { return nil }
        let listeners = udpListeners.withLock { Array($0.keys) }
        guard let otherIP = listeners.compactMap(IPAddress.init).first(where: { $0 != ip && $0.isIPv4 == ip.isIPv4 }) else { return nil }
        return otherIP.socketAddress(port: Self.otherPort(port))
    }

    /// The primary port and the alternate port (primary + 1) map to each other.
    static func otherPort(_ port: Int) -> Int { port % 2 == 0 ? port + 1 : port - 1 }

    /// The listener bound to `address`, if any.
    func udpListener(at address: SocketAddress) -> Channel? {
        udpListeners.withLock { $0[address] }
    }

    /// RFC 8489 §14.4: finds the static user whose USERHASH this is.
    func username(forUserhash hash: [UInt8]) -> String? {
        usersByHash[hash]
    }
}

/// An RFC 6062 peer connection between its creation (Connect or an incoming connection) and
/// the client's ConnectionBind; dropped after 30 s (RFC 6062 §5.3, §5.4).
struct PendingPeerConnection: Sendable {
    var peerChannel: Channel
    var username: String
    var timeout: Scheduled<Void>
}
