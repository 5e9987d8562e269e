import Foundation
import Testing
@testable import Signaling

/// The client's freshness and replay checks (issue 15, finding 5), and the cache's bounds.
@Suite struct CallFreshnessTests {
    let alice = Identity.generate()
    static var now: Double { Date().timeIntervalSince1970 }

    func signed(_ type: CallSetupType = .call, call: String = "c1", ts: Double) -> SignedBody {
        CallSigning.sign(CallPayload(type: type, from: "alice", to: "bob", call: call, kind: type == .call ? .audio : nil, ts: ts), with: alice)
    }

    @Test("a call signed a year ago with a valid signature is refused as stale, and does not pin the key")
    func yearOldCallIsStale() async throws {
        let bob = SignalingClient(url: "ws://127.0.0.1:1/ws", name: "bob", identity: .generate())
        let old = signed(ts: Self.now - 365 * 86_400)
        await #expect(throws: SignalingError.self) { try await bob.verifyCallSetup(.call, old, from: "alice", to: "bob", id: "1") }
        do {
            _ = try await bob.verifyCallSetup(.call, old, from: "alice", to: "bob", id: "1")
        } catch {
            #expect(error.code == .stale && error.of == "1", "\(error)")
        }
        #expect(bob.pins.key(for: "alice@127.0.0.1:1") == nil)
        // 119 s either way is inside the ±120 s window.
        for ts in [Self.now - 119, Self.now + 119] {
            let payload = try await bob.verifyCallSetup(.sdp, signed(.sdp, ts: ts), from: "alice", to: "bob", id: "2")
            #expect(payload.key == alice.publicKeyBase64)
        }
    }

    @Test("a fresh message delivered twice is taken once: the replay is refused")
    func replayIsRefused() async throws {
        let bob = SignalingClient(url: "ws://127.0.0.1:1/ws", name: "bob", identity: .generate())
        let hangup = signed(.hangup, ts: Self.now)
        #expect(try await bob.verifyCallSetup(.hangup, hangup, from: "alice", to: "bob", id: "1").type == .hangup)
        do {
            _ = try await bob.verifyCallSetup(.hangup, hangup, from: "alice", to: "bob", id: "2")
            Issue.record("a replayed hangup was taken")
        } catch {
            #expect(error.code == .replayed && error.of == "2", "\(error)")
        }
    }

    @Test("the replay cache is bounded: overflow drops the oldest and refuses anything not newer than them")
    func cacheIsBounded() throws {
        var cache = CallFreshness(capacity: 8)
        let now = 1_000_000.0
        let bodies = (0..<9).map { signed(.candidate, call: "c\($0)", ts: now - 60 + Double($0)) }
        for body in bodies {
            try cache.admit(body, try payload(body), now: now)
        }
        #expect(cache.count <= 8)
        // The first was evicted while still fresh: it cannot be told from a replay.
        #expect(throws: SignalingError.self) { try cache.admit(bodies[0], try payload(bodies[0]), now: now) }
        // The newest is still remembered.
        #expect(throws: SignalingError.self) { try cache.admit(bodies[8], try payload(bodies[8]), now: now) }
    }

    @Test("entries expire with the window: a full cache of old entries is emptied by the next admission")
    func entriesExpire() throws {
        var cache = CallFreshness(capacity: 8)
        let start = 1_000_000.0
        for index in 0..<8 {
            let body = signed(.candidate, call: "c\(index)", ts: start)
            try cache.admit(body, try payload(body), now: start)
        }
        #expect(cache.count == 8)
        let later = start + 2 * CallFreshness.defaultWindow + 1
        let body = signed(.candidate, call: "late", ts: later)
        try cache.admit(body, try payload(body), now: later)
        #expect(cache.count == 1)
    }

    func payload(_ body: SignedBody) throws -> CallPayload {
        try JSONDecoder().decode(CallPayload.self, from: Data(body.payload.utf8))
    }
}
