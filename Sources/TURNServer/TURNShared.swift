import Foundation
import Logging
import NIOCore
import Synchronization
import STUN

/// State every event loop of the server shares: configuration, credentials, quotas, the
/// relay port pool and RFC 6062 connections waiting for their ConnectionBind.
final class TURNShared: Sendable {
    let config: TURNServerConfiguration
    let nonces: NonceIssuer
    let quota: AllocationQuota
    let ports: RelayPortPool
    let metrics = TURNMetrics()
    let logger: Logger
    let relayIPv4: IPAddress?
    let relayIPv6: IPAddress?
    let pendingConnections = Mutex<[UInt32: PendingPeerConnection]>([:])
    /// USERHASH → static user, computed once (RFC 8489 §14.4) instead of per request.
    private let usersByHash: [[UInt8]: String]
    /// UDP listeners by local address, for answering RFC 5780 CHANGE-REQUESTs from another
    /// address or port. Filled only when RFC 5780 is enabled.
    let udpListeners = Mutex<[SocketAddress: Channel]>([:])

    init(config: TURNServerConfiguration, relayIPv4: IPAddress?, relayIPv6: IPAddress?, logger: Logger) {
        self.config = config
        self.nonces = NonceIssuer(lifetime: config.nonceLifetime)
        self.quota = AllocationQuota(userLimit: config.userQuota, totalLimit: config.totalQuota)
        self.ports = RelayPortPool(range: config.relayPorts)
        self.relayIPv4 = relayIPv4
        self.relayIPv6 = relayIPv6
        self.logger = logger
        self.usersByHash = Dictionary(config.users.keys.map { (LongTermCredentials.userhash(username: $0, realm: config.realm), $0) },
                                      uniquingKeysWith: { first, _ in first })
    }

    /// The password of a user: a static user, or a TURN REST username that has not expired.
    func password(for username: String, now: Date = Date()) -> String? {
        if let password = config.users[username] { return password }
        if let resolver = config.credentialResolver, let password = resolver(username) { return password }
        if let secret = config.restSecret, let expiry = TURNRESTCredentials.expiry(ofUsername: username),
           expiry > Int(now.timeIntervalSince1970) {
            return TURNRESTCredentials.password(secret: secret, username: username)
        }
        return nil
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
