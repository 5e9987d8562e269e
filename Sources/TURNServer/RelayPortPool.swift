import MeshCore
import Synchronization

/// The relay ports an operator gave the server (`--relay-ports`), handed out in random order
/// so that relayed addresses are hard to guess (RFC 8656 §7.2 recommends randomised ports),
/// plus EVEN-PORT reservations (RFC 8656 §7.2, §14.8).
public final class RelayPortPool: Sendable {
    private struct State {
        var free: [Int]
        var inUse: Set<Int> = []
        /// RESERVATION-TOKEN → reserved port and whether it is on the IPv6 relay address.
        var reservations: [UInt64: (port: Int, ipv6: Bool)] = [:]
    }

    private let state: Mutex<State>
    public let range: ClosedRange<Int>

    public init(range: ClosedRange<Int>) {
        self.range = range
        state = Mutex(State(free: Array(range).shuffled()))
    }

    /// Takes a free port (an even one when asked); nil when none is left.
    public func take(even: Bool = false) -> Int? {
        state.withLock { s in
            guard let index = s.free.lastIndex(where: { !even || $0 % 2 == 0 }) else { return nil }
            let port = s.free.remove(at: index)
            s.inUse.insert(port)
            return port
        }
    }

    /// Takes an even port and reserves the next one, of the same address family, under a fresh token.
    public func takeEvenWithReservation(ipv6: Bool) -> (port: Int, token: UInt64)? {
        state.withLock { s in
            guard let index = s.free.lastIndex(where: { $0 % 2 == 0 && s.free.contains($0 + 1) }) else { return nil }
            let port = s.free.remove(at: index)
            s.free.removeAll { $0 == port + 1 }
            s.inUse.insert(port)
            s.inUse.insert(port + 1)
            let token = UInt64.random(in: 1...UInt64.max)
            s.reservations[token] = (port + 1, ipv6)
            return (port, token)
        }
    }

    /// Claims the port a RESERVATION-TOKEN names; nil when unknown or expired.
    public func claim(token: UInt64) -> (port: Int, ipv6: Bool)? {
        state.withLock { $0.reservations.removeValue(forKey: token) }
    }

    /// Ends a reservation that was never claimed.
    public func expire(token: UInt64) {
        state.withLock { s in
            if let (port, _) = s.reservations.removeValue(forKey: token) {
                s.inUse.remove(port)
                s.free.insert(port, at: 0)
            }
        }
    }

    public func release(_ port: Int) {
        state.withLock { s in
            if s.inUse.remove(port) != nil { s.free.insert(port, at: 0) }
        }
    }
}

/// Per-user and total allocation counts (RFC 8656 §7.2: 486 Allocation Quota Reached), and the
/// relay socket of each allocation as a slot of the node's connection budget.
///
/// Users are counted by identity (``TURNShared/Credential/identity``), not by username: the
/// TURN REST username `EXPIRY:ID` changes at every login, and counted by username each login
/// brought a fresh quota. The table holds only users with an allocation, so it never has more
/// than ``totalLimit`` entries.
public final class AllocationQuota: Sendable {
    private struct State {
        var total = 0
        var perUser: [String: Int] = [:]
    }

    private let state = Mutex(State())
    public let userLimit: Int
    public let totalLimit: Int
    /// Each allocation's relay socket is a file descriptor: it takes a slot of this budget.
    let budget: ConnectionBudget?

    public init(userLimit: Int, totalLimit: Int, budget: ConnectionBudget? = nil) {
        self.userLimit = userLimit
        self.totalLimit = totalLimit
        self.budget = budget
    }

    /// Counts one allocation for `user` (an identity), or says which limit it would exceed.
    public func acquire(user: String) -> String? {
        state.withLock { s in
            if s.total >= totalLimit { return "the server holds its maximum of \(totalLimit) allocations" }
            if s.perUser[user, default: 0] >= userLimit { return "user \(user) holds its maximum of \(userLimit) allocations" }
            if let budget, !budget.acquire() {
                return "the node holds its maximum of \(budget.maximum) connections and relay sockets (max-connections)"
            }
            s.total += 1
            s.perUser[user, default: 0] += 1
            return nil
        }
    }

    public func release(user: String) {
        state.withLock { s in
            guard let held = s.perUser[user] else { return }
            s.perUser[user] = held > 1 ? held - 1 : nil
            s.total -= 1
            budget?.release()
        }
    }

    public var total: Int { state.withLock { $0.total } }
}
