import Foundation
import Testing
import TestSupport
@testable import Signaling

/// The node's side of call trust (issue 15, findings 1 and 5), each played by a raw client: a
/// `call` signed long ago, a replayed message and a third party's messages for another pair's
/// call are refused or cannot touch that call; the ringing table is bounded.
@Suite struct HubCallTrustTests {
    static var now: Double { Date().timeIntervalSince1970 }

    @Test("a call signed a year ago (valid signature) is refused as stale and never rings; so is one signed an hour ahead")
    func staleCallIsRefused() async throws {
        let node = try await HubFixture()
        let peers = try await node.loggedIn("alice", "bob")
        let (alice, aliceKey) = peers[0]
        let bob = peers[1].peer
        for ts in [Self.now - 365 * 86_400, Self.now + 3600] {
            let old = CallSigning.sign(CallPayload(type: .call, from: "alice", to: "bob", call: "c-\(ts)", kind: .audio, ts: ts), with: aliceKey)
            await alice.send(.callSetup(.call, old), to: "bob", id: "old")
            let error = try await alice.error()
            #expect(error.code == .stale && error.of == "old", "\(error)")
        }
        await alice.send(.chat(ChatBody(text: "marker")), to: "bob", id: "marker")
        try await bob.expectNext(id: "marker", "the chat after the stale calls (they must not ring)")
        await node.close()
    }

    @Test("the exact same signed message sent again is refused as replayed; a fresh one still goes through")
    func replayIsRefused() async throws {
        let node = try await HubFixture()
        let peers = try await node.loggedIn("alice", "bob")
        let (alice, aliceKey) = peers[0]
        let bob = peers[1].peer
        let call = CallSigning.sign(CallPayload(type: .call, from: "alice", to: "bob", call: "c1", kind: .audio, ts: Self.now), with: aliceKey)
        await alice.send(.callSetup(.call, call), to: "bob", id: "first")
        #expect(try await alice.ack().of == "first")
        #expect(try await bob.next().payload == .callSetup(.call, call))
        await alice.send(.callSetup(.call, call), to: "bob", id: "again")
        let error = try await alice.error()
        #expect(error.code == .replayed && error.of == "again", "\(error)")
        let cancel = CallSigning.sign(CallPayload(type: .cancel, from: "alice", to: "bob", call: "c1", ts: Self.now), with: aliceKey)
        await alice.send(.callSetup(.cancel, cancel), to: "bob", id: "cancel")
        #expect(try await alice.ack().of == "cancel")
        #expect(try await bob.next().payload == .callSetup(.cancel, cancel))
        await node.close()
    }

    @Test("mallory, using the id of alice's ringing call with bob, can neither stop nor take over its ring timer: both still get timeout")
    func thirdPartyCannotTouchAnotherPairsCall() async throws {
        let node = try await HubFixture()
        let peers = try await node.loggedIn("alice", "bob", "mallory")
        let (alice, aliceKey) = peers[0]
        let bob = peers[1].peer
        let (mallory, malloryKey) = peers[2]
        let call = CallSigning.sign(CallPayload(type: .call, from: "alice", to: "bob", call: "c1", kind: .audio, ring: 1, ts: Self.now), with: aliceKey)
        await alice.send(.callSetup(.call, call), to: "bob")
        #expect(try await alice.ack().of != "")
        // Mallory answers alice's call as if she were bob, and rings bob herself with the same
        // id and a long ring: before, her `call` replaced the pair's entry (and its 1 s timer).
        for (type, to, ring) in [(CallSetupType.accept, "alice", nil), (.call, "bob", 120), (.hangup, "bob", nil)] as [(CallSetupType, String, Int?)] {
            let body = CallSigning.sign(CallPayload(type: type, from: "mallory", to: to, call: "c1", kind: type == .call ? .audio : nil, ring: ring, ts: Self.now),
                                        with: malloryKey)
            await mallory.send(.callSetup(type, body), to: to)
            if type == .accept {
                // No call c1 from alice rings for mallory: the node refuses the answer.
                #expect(try await mallory.error().code == .forbidden)
            } else {
                #expect(try await mallory.ack().of != "")
            }
        }
        // alice's call still times out after its own 1 s, for both of them.
        let timedOut = try await alice.next { if case .timeout(let body) = $0.payload { body.call } else { nil } }
        #expect(timedOut == "c1")
        #expect(try await bob.next { if case .timeout(let body) = $0.payload { body.call } else { nil } } == "c1")
        await node.close()
    }

    @Test("call setup from a link: a year-old or replayed message is refused before it reaches a local peer")
    func linkedCallSetupFreshness() async throws {
        let node = try await HubFixture()
        let alice = Identity.generate()
        func message(_ ts: Double) -> (SignedBody, SignalingMessage) {
            let body = CallSigning.sign(CallPayload(type: .call, from: "alice", to: "bob", call: "c1", kind: .audio, ts: ts), with: alice)
            return (body, SignalingMessage(id: "l1", from: "alice@192.0.2.1:8080", to: "bob", payload: .callSetup(.call, body)))
        }
        let (old, oldMessage) = message(Self.now - 365 * 86_400)
        #expect(await node.hub.linkedCallSetupRefusal(.call, old, message: oldMessage)?.code == .stale)
        let (fresh, freshMessage) = message(Self.now)
        #expect(await node.hub.linkedCallSetupRefusal(.call, fresh, message: freshMessage) == nil)
        #expect(await node.hub.linkedCallSetupRefusal(.call, fresh, message: freshMessage)?.code == .replayed)
        await node.close()
    }

    @Test("the ringing table is bounded: a caller rings at most 8 calls at once (rate-limited), a cancel frees a place")
    func ringingCallsAreBounded() async throws {
        let node = try await HubFixture()
        let peers = try await node.loggedIn("mallory", "bob")
        let (mallory, key) = peers[0]
        func ring(_ id: String) async -> SignalingMessage? {
            let body = CallSigning.sign(CallPayload(type: .call, from: "mallory", to: "bob", call: id, kind: .audio, ring: 120, ts: Self.now), with: key)
            await mallory.send(.callSetup(.call, body), to: "bob", id: "m-\(id)")
            return try? await mallory.next()
        }
        for index in 0..<SignalingHub.maxRingingPerCaller {
            guard case .ack = await ring("c\(index)")?.payload else { throw TestFailure("call \(index) was not relayed") }
        }
        guard case .error(let body) = await ring("one-too-many")?.payload else { throw TestFailure("the 9th ringing call was relayed") }
        #expect(body.code == .rateLimited && body.of == "m-one-too-many", "\(body)")
        let cancel = CallSigning.sign(CallPayload(type: .cancel, from: "mallory", to: "bob", call: "c0", ts: Self.now), with: key)
        await mallory.send(.callSetup(.cancel, cancel), to: "bob")
        #expect(try await mallory.ack().of != "")
        guard case .ack = await ring("after-cancel")?.payload else { throw TestFailure("a place freed by cancel was not reused") }
        #expect(await node.hub.ringingCount == SignalingHub.maxRingingPerCaller)
        await node.close()
    }
}

extension SignalingHub {
    /// How many calls ring at this node now.
    var ringingCount: Int { calls.count }
}
