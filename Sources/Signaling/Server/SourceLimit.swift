import STUN
import Synchronization

/// WebSocket connections per source (setting `max-connections-per-ip`), so that one host cannot
/// take the node's whole connection budget. Sources are ``STUN/IPAddress/connectionSource``: an
/// IPv4 address, or an IPv6 /64, as for the TURN server's stream connections. The table holds
/// only sources with open connections: an entry goes when its last connection closes, so it is
/// bounded by the connection budget.
public final class SourceLimit: Sendable {
    /// Connections one source may hold at once.
    public let maximum: Int
    private let counts = Mutex<[IPAddress: Int]>([:])

    /// Generous by default: a whole office or a carrier NAT may share one address.
    public static let defaultMaximum = 256

    public init(maximum: Int = SourceLimit.defaultMaximum) {
        self.maximum = max(1, maximum)
    }

    /// Takes a place for the source of `address`; false when it holds its maximum. Every `true`
    /// is paired with one ``release(_:)`` of the same address.
    public func acquire(_ address: IPAddress) -> Bool {
        let source = address.connectionSource
        return counts.withLock { counts in
            guard counts[source, default: 0] < maximum else { return false }
            counts[source, default: 0] += 1
            return true
        }
    }

    /// Gives back a place taken with ``acquire(_:)``.
    public func release(_ address: IPAddress) {
        let source = address.connectionSource
        counts.withLock { counts in
            guard let held = counts[source] else { return }
            counts[source] = held > 1 ? held - 1 : nil
        }
    }

    /// Connections the source of `address` holds now.
    public func held(by address: IPAddress) -> Int { counts.withLock { $0[address.connectionSource] ?? 0 } }
}
