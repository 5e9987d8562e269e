import Foundation

/// The rules of device linking (docs/protocol.md "Devices"): what an endorsement signs and the
/// bounds of everything keyed by outside input.
public enum DeviceRules {
    /// Keys a name may have besides its owner key.
    public static let maxDevices = 7
    /// A link code lives this long: long enough to read six digits off one screen and type
    /// them on another, short enough that an unused code is not a standing way in.
    public static let codeLifetime: Duration = .seconds(300)
    /// Wrong codes tried against one code before it is void. With 10^6 codes, a guesser's
    /// chance per code is 5 in a million; the owner makes a new code after a void one.
    public static let maxAttempts = 5
    /// Link codes pending at once on a node (one per name).
    public static let maxPendingCodes = 1024
    /// Wrong claims the whole node answers: `claimRate` a second, bursts of `claimBurst`; beyond
    /// that a claim is refused unread (`rate-limited`), so a flood over many names or
    /// connections cannot try codes faster than this.
    public static let claimRate = 2.0
    public static let claimBurst = 20.0

    /// The text the owner key signs to endorse `key` for `name`: a context line of its own, so
    /// that no login or call signature can pass for an endorsement.
    public static func endorsementText(name: String, key: String) -> String {
        "meshnode.v1 device\n\(name)\n\(key)"
    }

    /// True when `endorsement` is the owner key's signature of `key` for `name`.
    public static func verify(endorsement: String, name: String, key: String, owner: String) -> Bool {
        Identity.verify(signatureBase64: endorsement, text: endorsementText(name: name, key: key), publicKeyBase64: owner)
    }

    /// Six random decimal digits, uniform (rejection sampling over 32-bit words).
    static func makeCode() -> String {
        while true {
            let bytes = Sodium.randomBytes(4)
            let word = bytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            // 4,294,000,000 is the largest multiple of 10^6 below 2^32: no modulo bias.
            if word < 4_294_000_000 { return String(format: "%06u", word % 1_000_000) }
        }
    }
}

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
