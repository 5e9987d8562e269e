import Foundation
internal import CSodium

/// Freshness of signed call-setup messages (docs/protocol.md "Call setup", "Freshness"): a
/// message whose `ts` is more than ``window`` seconds from this side's clock is refused as
/// `stale`, and a message seen before within the window is refused as `replayed`. The node
/// checks both before relaying; every receiving client checks them again, because a node (or a
/// link) could replay what it relayed.
///
/// Why ±120 s: the window must cover clock skew between two peers on ordinary NTP-synchronised
/// machines (well under a second) and browsers on laptops (clocks off by tens of seconds are
/// seen), plus the relay time across two nodes and the client's retries (each retry is signed
/// anew). It is also the longest a `call` may ring (`ring` ≤ 120), so a `call` replayed after
/// the window can no longer ring, and the replay cache need only remember the last 240 s.
///
/// The cache holds a digest of (key, payload) per message, so it does not depend on the
/// signature's encoding. It is bounded by ``capacity``: entries expire when their `ts` leaves
/// the window; when it is full of live entries, the oldest eighth (by `ts`) is dropped and the
/// newest `ts` dropped becomes a floor: a message at or below it can no longer be told from a
/// replay and is refused. A flood thus makes the check stricter, never weaker.
public struct CallFreshness: Sendable {
    /// Seconds a call-setup `ts` may differ from this side's clock, either way.
    public static let defaultWindow: Double = 120

    public let window: Double
    public let capacity: Int
    /// Digest → the `ts` it was signed with.
    private var seen: [String: Double] = [:]
    /// Messages with `ts` at or below this were evicted unexpired: refused as possible replays.
    private var floor = -Double.infinity

    /// - Parameters:
    ///   - window: seconds either way (default ``defaultWindow``).
    ///   - capacity: how many messages the replay cache remembers at most.
    public init(window: Double = CallFreshness.defaultWindow, capacity: Int) {
        self.window = window
        self.capacity = max(capacity, 8)
    }

    /// How many messages the replay cache holds now.
    public var count: Int { seen.count }

    /// Admits `payload` (the decoded, signature-checked content of `body`) once, at `now` (Unix
    /// seconds); throws `stale` or `replayed` (with `of: id`) otherwise. Call only after the
    /// signature verified, so that unsigned junk cannot fill the cache.
    public mutating func admit(_ body: SignedBody, _ payload: CallPayload, now: Double, of id: String? = nil) throws(SignalingError) {
        try checkTime(payload, now: now, of: id)
        try admit(body, ts: payload.ts, now: now, what: "the \(payload.type.rawValue) of call \(payload.call.prefix(64))", of: id)
    }

    /// Admits any signed body with time `ts` once (a `room-call` request, whose time the caller
    /// checked): the replay half of ``admit(_:_:now:of:)``; `what` names it in the refusal.
    public mutating func admit(_ body: SignedBody, ts: Double, now: Double, what: String, of id: String? = nil) throws(SignalingError) {
        let digest = Self.digest(key: body.key, payload: body.payload)
        guard seen[digest] == nil, ts > floor else {
            throw SignalingError(.replayed, "\(what) was received before (a replay); each signed message is taken once", of: id)
        }
        seen[digest] = ts
        if seen.count > capacity { makeRoom(now: now) }
    }

    /// Throws `stale` when `payload.ts` is outside the window around `now`; remembers nothing.
    public func checkTime(_ payload: CallPayload, now: Double, of id: String? = nil) throws(SignalingError) {
        let ts = payload.ts
        guard ts.isFinite, abs(now - ts) <= window else {
            let age = ts.isFinite ? "\(Int(min(abs(now - ts), 1e12))) s " + (now > ts ? "old" : "in the future") : "not a time"
            throw SignalingError(.stale, "the \(payload.type.rawValue) of call \(payload.call.prefix(64)) was signed at ts \(ts) (\(age)); call setup is accepted within ±\(Int(window)) s of this clock — check the sender's clock", of: id)
        }
    }

    /// Drops expired entries; if that is not enough, the oldest eighth, raising the floor.
    private mutating func makeRoom(now: Double) {
        seen = seen.filter { now - $0.value <= window }
        guard seen.count > capacity - capacity / 8 else { return }
        let oldest = seen.sorted { $0.value < $1.value }.prefix(seen.count - (capacity - capacity / 8))
        for (digest, ts) in oldest {
            seen[digest] = nil
            floor = max(floor, ts)
        }
    }

    /// BLAKE2b-128 of the key and the exact signed text.
    static func digest(key: String, payload: String) -> String {
        Sodium.ready()
        let input = Array((key + "\n" + payload).utf8)
        let length = 16
        var out = [UInt8](repeating: 0, count: length)
        _ = crypto_generichash(&out, length, input, UInt64(input.count), nil, 0)
        return Data(out).base64EncodedString()
    }
}
