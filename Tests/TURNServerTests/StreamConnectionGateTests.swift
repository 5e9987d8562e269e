import MeshCore
import NIOCore
import Testing
import STUN
@testable import TURNServer

/// The caps on TURN's TCP and TLS connections and the node's one connection budget
/// (issue 15, finding 8).
@Suite struct StreamConnectionGateTests {
    func address(_ ip: String, _ port: Int = 40_000) -> SocketAddress { try! SocketAddress(ipAddress: ip, port: port) }

    @Test("one source gets at most its share; another source still gets in; a release frees the place")
    func perSource() throws {
        let gate = StreamConnectionGate(maximum: 10, maximumPerSource: 2, budget: ConnectionBudget(maximum: 100))
        let first = try gate.admit(address("198.51.100.7", 1)).get()
        _ = try gate.admit(address("198.51.100.7", 2)).get()
        let refused = gate.admit(address("198.51.100.7", 3))
        #expect(throws: StreamConnectionGate.Refusal.self) { try refused.get() }
        if case .failure(let refusal) = refused { #expect(refusal.metric == "connections_per_source") }
        #expect(throws: Never.self) { try gate.admit(address("198.51.100.8")).get() }
        gate.release(first)
        #expect(throws: Never.self) { try gate.admit(address("198.51.100.7", 4)).get() }
        #expect(gate.current == 3)
    }

    @Test("an IPv6 source is its /64; an IPv4-mapped address counts as the IPv4 address")
    func sources() {
        #expect(StreamConnectionGate.source(of: address("2001:db8:1:2:aaaa::1")) == StreamConnectionGate.source(of: address("2001:db8:1:2:bbbb::9")))
        #expect(StreamConnectionGate.source(of: address("2001:db8:1:2::1")) != StreamConnectionGate.source(of: address("2001:db8:1:3::1")))
        #expect(StreamConnectionGate.source(of: address("::ffff:192.0.2.1")) == IPAddress(string: "192.0.2.1"))
        let gate = StreamConnectionGate(maximum: 10, maximumPerSource: 1, budget: ConnectionBudget(maximum: 100))
        #expect(throws: Never.self) { try gate.admit(address("2001:db8:1:2::1")).get() }
        #expect(throws: StreamConnectionGate.Refusal.self) { try gate.admit(address("2001:db8:1:2:ffff:ffff:ffff:ffff")).get() }
    }

    @Test("the total cap refuses every source")
    func total() throws {
        let gate = StreamConnectionGate(maximum: 2, maximumPerSource: 2, budget: ConnectionBudget(maximum: 100))
        _ = try gate.admit(address("198.51.100.1")).get()
        _ = try gate.admit(address("198.51.100.2")).get()
        guard case .failure(let refusal) = gate.admit(address("198.51.100.3")) else {
            Issue.record("admitted beyond the total cap")
            return
        }
        #expect(refusal.metric == "connections")
    }

    @Test("the budget is shared: slots another service holds are not available, and a refusal takes none")
    func sharedBudget() throws {
        let budget = ConnectionBudget(maximum: 3)
        let gate = StreamConnectionGate(maximum: 10, maximumPerSource: 10, budget: budget)
        #expect(budget.acquire() && budget.acquire(), "two WebSocket connections")
        let source = try gate.admit(address("198.51.100.1")).get()
        #expect(budget.current == 3)
        guard case .failure(let refusal) = gate.admit(address("198.51.100.1")) else {
            Issue.record("admitted beyond the budget")
            return
        }
        #expect(refusal.metric == "connection_budget")
        #expect(budget.current == 3 && gate.current == 1)
        budget.release()
        #expect(throws: Never.self) { try gate.admit(address("198.51.100.1")).get() }
        gate.release(source)
        #expect(budget.current == 2)
    }

    @Test("allocations' relay sockets take budget slots and give them back")
    func quotaTakesBudget() {
        let budget = ConnectionBudget(maximum: 2)
        let quota = AllocationQuota(userLimit: 5, totalLimit: 5, budget: budget)
        #expect(quota.acquire(user: "alice") == nil)
        #expect(quota.acquire(user: "bob") == nil)
        #expect(quota.acquire(user: "carol")?.contains("max-connections") == true)
        #expect(quota.total == 2)
        quota.release(user: "alice")
        #expect(budget.current == 1)
        quota.release(user: "nobody")
        #expect(budget.current == 1 && quota.total == 1, "releasing what was never held changes nothing")
    }
}
