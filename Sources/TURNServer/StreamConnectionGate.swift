import MeshCore
import NIOCore
import Synchronization
import STUN

/// Admits the TURN server's TCP and TLS connections (RFC 8656 §3.1, RFC 6062 §4.3): at most
/// ``maximum`` at once, at most ``maximumPerSource`` from one source, and each one a slot of the
/// node's ``ConnectionBudget``, which the signaling server's WebSocket connections share.
///
/// Each connection holds a file descriptor for as long as it is open, whether or not it ever
/// authenticates; without these caps 300 connections that sent one Binding each stayed open and
/// enough of them would exhaust the process's descriptors. A source is an IPv4 address, or the
/// /64 prefix of an IPv6 address: a single host commonly holds a whole /64 (RFC 7421), so a cap
/// per IPv6 address would cap nothing.
///
/// The table of sources holds only sources with a connection open, so it never has more than
/// ``maximum`` entries. Shared by the event loops; one lock per connection opened or closed.
final class StreamConnectionGate: Sendable {
    /// Why a connection was refused: the `reason` of `meshnode_turn_refusals_total`, and a
    /// sentence for the log.
    struct Refusal: Error {
        var metric: String
        var reason: String
    }

    private struct State {
        var total = 0
        var perSource: [IPAddress: Int] = [:]
    }

    let maximum: Int
    let maximumPerSource: Int
    let budget: ConnectionBudget
    private let state = Mutex(State())

    init(maximum: Int, maximumPerSource: Int, budget: ConnectionBudget) {
        self.maximum = max(1, maximum)
        self.maximumPerSource = max(1, maximumPerSource)
        self.budget = budget
    }

    /// Connections admitted and not yet released.
    var current: Int { state.withLock { $0.total } }

    /// The source a client address counts under: the IPv4 address (also when it arrives
    /// IPv4-mapped on a dual-stack socket), or the /64 of an IPv6 address.
    static func source(of address: SocketAddress) -> IPAddress? {
        IPAddress(address)?.connectionSource
    }

    /// Takes a place for a connection from `client`, or says why there is none. A place taken
    /// is given back with ``release(_:)`` and the returned source, exactly once.
    func admit(_ client: SocketAddress?) -> Result<IPAddress, Refusal> {
        guard let client, let source = Self.source(of: client) else {
            return .failure(Refusal(metric: "connections", reason: "a connection without an IP address"))
        }
        let refusal: Refusal? = state.withLock { s in
            if s.perSource[source, default: 0] >= maximumPerSource {
                return Refusal(metric: "connections_per_source",
                               reason: "\(source) holds its maximum of \(maximumPerSource) TCP/TLS connections")
            }
            if s.total >= maximum {
                return Refusal(metric: "connections", reason: "the server holds its maximum of \(maximum) TCP/TLS connections")
            }
            // Last: the budget is shared with the WebSocket server and is taken only when this
            // gate would admit the connection.
            guard budget.acquire() else {
                return Refusal(metric: "connection_budget",
                               reason: "the node holds its maximum of \(budget.maximum) connections (max-connections)")
            }
            s.total += 1
            s.perSource[source, default: 0] += 1
            return nil
        }
        if let refusal { return .failure(refusal) }
        return .success(source)
    }

    /// Gives back the place of a connection from `source` that has closed.
    func release(_ source: IPAddress) {
        state.withLock { s in
            guard let count = s.perSource[source] else { return }
            s.perSource[source] = count > 1 ? count - 1 : nil
            s.total -= 1
            budget.release()
        }
    }
}
