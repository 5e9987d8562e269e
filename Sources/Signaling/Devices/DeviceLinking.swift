import Foundation

/// The link codes pending at a node: at most one per name, each with an expiry, a count of
/// wrong tries and, once a device typed it right, that device's claim. Pure: the hub passes the
/// time in, so the tests drive expiry with a clock of their own.
struct DeviceLinking {
    struct Pending {
        let code: String
        let expires: ContinuousClock.Instant
        var wrong = 0
        /// A claim that matched: its message id, the new key and the claiming connection.
        var claim: Claim?
    }

    struct Claim {
        let id: String
        let key: String
        let connection: Int
    }

    /// What a claim came to.
    enum ClaimResult {
        /// The code matched: ask the owner.
        case matched
        /// Wrong or no code; `voided` when this try used up the code's attempts.
        case wrong(voided: Bool)
        /// Over the node's rate of claims.
        case limited
    }

    private(set) var pending: [String: Pending] = [:]
    private var limiter: RateLimiter

    init(now: ContinuousClock.Instant) {
        limiter = RateLimiter(rate: DeviceRules.claimRate, burst: DeviceRules.claimBurst, now: now)
    }

    /// A new code for `name`, replacing its previous one; nil when the node holds
    /// ``DeviceRules/maxPendingCodes`` codes of other names.
    mutating func newCode(for name: String, now: ContinuousClock.Instant) -> Pending? {
        _ = expire(now: now)
        guard pending[name] != nil || pending.count < DeviceRules.maxPendingCodes else { return nil }
        let entry = Pending(code: DeviceRules.makeCode(), expires: now + DeviceRules.codeLifetime)
        pending[name] = entry
        return entry
    }

    /// A device typed `code` for `name`. Every claim, right or wrong, costs a token of the
    /// node's bucket; a wrong one also counts against the name's code.
    mutating func claim(name: String, code: String, key: String, id: String, connection: Int, now: ContinuousClock.Instant) -> ClaimResult {
        guard limiter.allow(now: now) else { return .limited }
        guard var entry = pending[name], entry.expires > now, entry.claim == nil else { return .wrong(voided: false) }
        guard Self.equal(entry.code, code) else {
            entry.wrong += 1
            if entry.wrong >= DeviceRules.maxAttempts {
                pending[name] = nil
                return .wrong(voided: true)
            }
            pending[name] = entry
            return .wrong(voided: false)
        }
        entry.claim = Claim(id: id, key: key, connection: connection)
        pending[name] = entry
        return .matched
    }

    /// The claim of `key` for `name`, removed with its code (the owner answered).
    mutating func takeClaim(name: String, key: String) -> Claim? {
        guard let claim = pending[name]?.claim, claim.key == key else { return nil }
        pending[name] = nil
        return claim
    }

    /// Whether `connection` waits for an owner's answer (it may stay past the login timeout).
    func isClaiming(_ connection: Int) -> Bool {
        pending.values.contains { $0.claim?.connection == connection }
    }

    /// Removes expired codes; returns the claims that were waiting on them.
    @discardableResult
    mutating func expire(now: ContinuousClock.Instant) -> [Claim] {
        var waiting: [Claim] = []
        for (name, entry) in pending where entry.expires <= now {
            if let claim = entry.claim { waiting.append(claim) }
            pending[name] = nil
        }
        return waiting
    }

    /// Forgets what a closed connection claimed.
    mutating func closed(_ connection: Int) {
        for (name, entry) in pending where entry.claim?.connection == connection {
            pending[name] = nil
        }
    }

    /// Compares in time independent of where the strings differ.
    private static func equal(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
