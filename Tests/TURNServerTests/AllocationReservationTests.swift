import Testing
@testable import TURNServer

/// What an Allocate reserves comes back on every path that does not create the allocation
/// (RFC 8656 §7.2), and stays with the allocation on the one that does.
@Suite struct AllocationReservationTests {
    let quota = AllocationQuota(userLimit: 2, totalLimit: 3)
    let pool = RelayPortPool(range: 40_000...40_001)

    /// The ports the pool can still hand out (it is empty afterwards).
    func freePorts() -> Set<Int> {
        var free = Set<Int>()
        while let port = pool.take() { free.insert(port) }
        return free
    }

    /// Whether `user` can hold its whole quota now.
    func wholeQuotaFree(for user: String) -> Bool {
        defer { for _ in 0..<quota.userLimit { quota.release(user: user) } }
        return (0..<quota.userLimit).allSatisfy { _ in quota.acquire(user: user) == nil } && quota.acquire(user: user) != nil
    }

    @Test("dropped without commit (a refusal or a failed bind), a reservation gives back its quota and its port")
    func droppedReleases() {
        do {
            var reservation = AllocationReservation(username: "mallory", quota: quota, ports: pool)
            let refusal = reservation.acquireQuota()
            let taken = reservation.takePort(even: false, reserveNext: false, ipv6: false)
            #expect(refusal == nil && taken)
            #expect(quota.total == 1)
        }
        #expect(quota.total == 0)
        #expect(wholeQuotaFree(for: "mallory"))
        #expect(freePorts() == [40_000, 40_001])
    }

    @Test("committed, the quota and the port belong to the allocation")
    func commitKeeps() {
        var reservation = AllocationReservation(username: "alice", quota: quota, ports: pool)
        let refusal = reservation.acquireQuota()
        let taken = reservation.takePort(even: true, reserveNext: false, ipv6: false)
        #expect(refusal == nil && taken)
        let (port, token) = reservation.commit()
        #expect(port == 40_000, "EVEN-PORT gets the even port")
        #expect(token == nil)
        #expect(quota.total == 1)
        #expect(freePorts() == [40_001])
    }

    @Test("EVEN-PORT with R: dropped, both the port and the reserved next one come back and the token is void")
    func evenPortReservationDropped() {
        var token: UInt64?
        do {
            var reservation = AllocationReservation(username: "mallory", quota: quota, ports: pool)
            let refusal = reservation.acquireQuota()
            let taken = reservation.takePort(even: true, reserveNext: true, ipv6: false)
            #expect(refusal == nil && taken)
            let port = reservation.port
            #expect(port == 40_000)
            token = reservation.reservationToken
        }
        #expect(token != nil)
        #expect(pool.claim(token: token ?? 0) == nil, "a failed allocation leaves no reservation behind")
        #expect(freePorts() == [40_000, 40_001])
        #expect(quota.total == 0)
    }

    @Test("EVEN-PORT with R: committed, the next port stays reserved for its token, with the family")
    func evenPortReservationCommitted() throws {
        var reservation = AllocationReservation(username: "alice", quota: quota, ports: pool)
        let refusal = reservation.acquireQuota()
        let taken = reservation.takePort(even: true, reserveNext: true, ipv6: true)
        #expect(refusal == nil && taken)
        let (port, token) = reservation.commit()
        #expect(port == 40_000)
        var claimer = AllocationReservation(username: "alice", quota: quota, ports: pool)
        let family = claimer.claim(token: try #require(token))
        let claimed = claimer.port
        #expect(family == .ipv6)
        #expect(claimed == 40_001)
    }

    @Test("a claimed RESERVATION-TOKEN refused for quota gives its port back to the pool")
    func claimedPortReturnsOnQuotaRefusal() throws {
        let token = try #require(pool.takeEvenWithReservation(ipv6: false)).token
        _ = quota.acquire(user: "alice")
        _ = quota.acquire(user: "alice")
        do {
            var reservation = AllocationReservation(username: "alice", quota: quota, ports: pool)
            let family = reservation.claim(token: token)
            let refusal = reservation.acquireQuota()
            #expect(family == .ipv4)
            #expect(refusal == "user alice holds its maximum of 2 allocations")
        }
        #expect(quota.total == 2, "a refused reservation gives back no slot it did not hold")
        #expect(freePorts() == [40_001], "the claimed port is free again; 40000 still belongs to the reserving allocation")
    }

    @Test("a port that cannot be bound is swapped for another of the same parity, and the first goes back")
    func replacePort() {
        let pool = RelayPortPool(range: 40_000...40_003)
        var reservation = AllocationReservation(username: "alice", quota: quota, ports: pool)
        _ = reservation.takePort(even: true, reserveNext: false, ipv6: false)
        let first = reservation.port
        let replaced = reservation.replacePort(even: true)
        let second = reservation.port
        #expect(first != nil && replaced)
        #expect(second != first)
        #expect(second.map { $0 % 2 == 0 } == true)
        _ = reservation.replacePort(even: true)
        let third = reservation.port
        #expect(third == first, "the first port was given back and could be taken again")
    }
}
