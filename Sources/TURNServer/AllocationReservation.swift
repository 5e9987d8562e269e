import STUN
/// What an Allocate holds while the allocation is being set up (RFC 8656 §7.2): a place in the
/// user's and the server's quota, the relay port, and for EVEN-PORT with the R bit the next port,
/// reserved under a RESERVATION-TOKEN.
///
/// Whatever it holds goes back to the quota and the port pool when it is dropped without
/// ``commit()``: every refusal after a step succeeded and every failed relay bind releases by
/// leaving scope, so no exit can leak a port or a quota slot (an authenticated client could
/// otherwise exhaust the server with requests that fail late). Committed, everything belongs to
/// the ``Allocation``, which ``TURNLoop/delete(_:reason:)`` releases.
///
/// Noncopyable, so that exactly one owner can commit or drop it. It lives on the event loop of
/// its request; the pool and the quota it gives back to are shared between loops and locked.
struct AllocationReservation: ~Copyable {
    let username: String
    /// Whom the quota counts the allocation for (``TURNShared/Credential/identity``).
    let identity: String
    private let quota: AllocationQuota
    private let ports: RelayPortPool
    /// The relay port, once taken from the pool or claimed with a RESERVATION-TOKEN.
    private(set) var port: Int?
    /// The token under which the port after ``port`` is reserved (EVEN-PORT with R set).
    private(set) var reservationToken: UInt64?
    private var countsInQuota = false
    private var committed = false

    init(username: String, identity: String? = nil, quota: AllocationQuota, ports: RelayPortPool) {
        self.username = username
        self.identity = identity ?? username
        self.quota = quota
        self.ports = ports
    }

    /// Counts the allocation in the user's and the server's quota; returns which limit it would
    /// exceed instead (RFC 8656 §7.2: 486 Allocation Quota Reached).
    mutating func acquireQuota() -> String? {
        precondition(!countsInQuota, "the quota is acquired once")
        if let refusal = quota.acquire(user: identity) { return refusal }
        countsInQuota = true
        return nil
    }

    /// Claims the port a RESERVATION-TOKEN names and returns its family: the allocation gets
    /// the family of the one that reserved it (RFC 8656 §7.2). Nil when the token is unknown or
    /// expired.
    mutating func claim(token: UInt64) -> STUNAddressFamily? {
        precondition(port == nil, "one relay port per allocation")
        guard let (claimed, ipv6) = ports.claim(token: token) else { return nil }
        port = claimed
        return ipv6 ? .ipv6 : .ipv4
    }

    /// Takes a port from the pool: an even one for EVEN-PORT, and with `reserveNext` the next
    /// one as well, reserved under a new token for a later Allocate of the same family
    /// (RFC 8656 §7.2). False when the pool has none.
    mutating func takePort(even: Bool, reserveNext: Bool, ipv6: Bool) -> Bool {
        precondition(port == nil, "one relay port per allocation")
        if reserveNext {
            guard let (taken, token) = ports.takeEvenWithReservation(ipv6: ipv6) else { return false }
            port = taken
            reservationToken = token
        } else {
            port = ports.take(even: even)
        }
        return port != nil
    }

    /// The port could not be bound (another program holds it): gives it back and takes another
    /// of the same parity. False when none is left; the reservation then holds no port.
    mutating func replacePort(even: Bool) -> Bool {
        if let port { ports.release(port) }
        port = ports.take(even: even)
        return port != nil
    }

    /// Hands the port, the next port's reservation and the quota slot to the allocation.
    consuming func commit() -> (port: Int, reservationToken: UInt64?) {
        guard let port, countsInQuota else { preconditionFailure("an allocation needs a port and a place in the quota") }
        committed = true
        return (port, reservationToken)
    }

    deinit {
        guard !committed else { return }
        if let port { ports.release(port) }
        if let reservationToken { ports.expire(token: reservationToken) }
        if countsInQuota { quota.release(user: identity) }
    }
}
