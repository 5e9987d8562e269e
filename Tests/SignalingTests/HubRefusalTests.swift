import Foundation
import Testing
import TestSupport
@testable import Signaling

/// The refusals an independent client found missing or in the wrong order (issue 18, item 3),
/// each played by a raw client, each with the legitimate use next to it.
@Suite struct HubRefusalTests {
    static var now: Double { Date().timeIntervalSince1970 }

    @Test("before login an unknown type, or a chat with a broken body, gets not-logged-in (with of); login then works")
    func notLoggedInComesFirst() async throws {
        let node = try await HubFixture()
        let peer = await node.peer()
        let nonce = try await peer.next { if case .challenge(let body) = $0.payload { body.nonce } else { nil } }
        await peer.send(#"{"type":"teleport","id":"u1","from":"","to":"@node","body":{}}"#)
        var error = try await peer.error()
        #expect(error.code == .notLoggedIn && error.of == "u1", "\(error)")
        await peer.send(#"{"type":"chat","id":"u2","from":"","to":"bob","body":{"text":7}}"#)
        error = try await peer.error()
        #expect(error.code == .notLoggedIn && error.of == "u2", "\(error)")
        // A broken login is still a login: its fault is the field.
        await peer.send(#"{"type":"login","id":"u3","from":"","to":"@node","body":{"name":"alice"}}"#)
        error = try await peer.error()
        #expect(error.code == .badField && error.of == "u3", "\(error)")
        let identity = Identity.generate()
        await peer.send(.login(LoginBody.signed(name: "alice", identity: identity, nonce: nonce)))
        let welcome = try await peer.next { if case .welcome(let body) = $0.payload { body } else { nil } }
        #expect(welcome.name == "alice")
        await node.close()
    }

    @Test("a client's mesh or dialback gets forbidden even with a broken body; a broken chat still gets bad-field")
    func nodeOnlyTypesAreForbiddenFirst() async throws {
        let node = try await HubFixture()
        let alice = try await node.loggedIn("alice")[0].peer
        for type in ["mesh", "dialback", "dialback-result", "linked"] {
            await alice.send(#"{"type":"\#(type)","id":"n-\#(type)","from":"","to":"@node","body":{"x":1}}"#)
            let error = try await alice.error()
            #expect(error.code == .forbidden && error.of == "n-\(type)", "\(type): \(error)")
        }
        await alice.send(#"{"type":"chat","id":"c1","from":"","to":"bob","body":{}}"#)
        let error = try await alice.error()
        #expect(error.code == .badField && error.of == "c1", "\(error)")
        await node.close()
    }

    @Test("a frame dropped by the rate limit is answered rate-limited with of naming it")
    func rateLimitedCarriesOf() async throws {
        let clock = ManualClock()
        let node = try await HubFixture(rate: 1, burst: 2, clock: clock)
        let alice = try await node.loggedIn("alice")[0].peer
        // The clock stands still: the burst runs out within these five, and each answer (pong
        // or error) comes in order, so answer i is about ping i.
        for index in 0..<5 { await alice.send(.ping, id: "p\(index)") }
        var refused = 0
        for index in 0..<5 {
            let reply = try await alice.next()
            if case .error(let body) = reply.payload {
                refused += 1
                #expect(body.error.code == .rateLimited && body.error.of == "p\(index)", "\(body.error)")
            } else {
                #expect(reply.id == "p\(index)")
            }
        }
        #expect(refused > 0)
        clock.advance(by: .seconds(5))
        await alice.send(.ping, id: "p-ok")
        #expect(try await alice.next().id == "p-ok")
        await node.close()
    }

    @Test("a call with ring 0 or 121 is refused with bad-field and does not ring; ring 120 rings")
    func ringOutOfRangeIsRefused() async throws {
        let node = try await HubFixture()
        let peers = try await node.loggedIn("alice", "bob")
        let (alice, aliceKey) = peers[0]
        let bob = peers[1].peer
        for ring in [0, 121, -5] {
            let call = CallSigning.sign(CallPayload(type: .call, from: "alice", to: "bob", call: "r\(ring)", kind: .audio, ring: ring, ts: Self.now), with: aliceKey)
            await alice.send(.callSetup(.call, call), to: "bob", id: "ring\(ring)")
            let error = try await alice.error()
            #expect(error.code == .badField && error.of == "ring\(ring)", "\(error)")
        }
        let call = CallSigning.sign(CallPayload(type: .call, from: "alice", to: "bob", call: "r120", kind: .audio, ring: 120, ts: Self.now), with: aliceKey)
        await alice.send(.callSetup(.call, call), to: "bob", id: "ring120")
        #expect(try await alice.ack().of == "ring120")
        #expect(try await bob.next().id == "ring120")
        await node.close()
    }

    @Test("accept, reject or busy for a call that does not ring (made up, or timed out) is refused with forbidden, not delivered; for a ringing call it is delivered")
    func answerToNoCallIsRefused() async throws {
        let node = try await HubFixture()
        let peers = try await node.loggedIn("alice", "bob")
        let (alice, aliceKey) = peers[0]
        let (bob, bobKey) = peers[1]
        func answer(_ type: CallSetupType, _ call: String, id: String) async {
            await bob.send(.callSetup(type, CallSigning.sign(CallPayload(type: type, from: "bob", to: "alice", call: call, ts: Self.now), with: bobKey)),
                           to: "alice", id: id)
        }
        for type in [CallSetupType.accept, .reject, .busy] {
            await answer(type, "never-placed", id: "a-\(type)")
            let error = try await bob.error()
            #expect(error.code == .forbidden && error.of == "a-\(type)", "\(error)")
        }
        // A call that rang out: its late accept is refused too.
        let short = CallSigning.sign(CallPayload(type: .call, from: "alice", to: "bob", call: "short", kind: .audio, ring: 1, ts: Self.now), with: aliceKey)
        await alice.send(.callSetup(.call, short), to: "bob", id: "short")
        #expect(try await alice.ack().of == "short")
        _ = try await bob.next { if case .timeout(let body) = $0.payload { body.call } else { nil } }
        await answer(.accept, "short", id: "late")
        #expect(try await bob.error().of == "late")
        // The legitimate answer: delivered, and alice saw none of the refused ones before it.
        let call = CallSigning.sign(CallPayload(type: .call, from: "alice", to: "bob", call: "real", kind: .audio, ts: Self.now), with: aliceKey)
        await alice.send(.callSetup(.call, call), to: "bob", id: "real")
        #expect(try await alice.ack().of == "real")
        await answer(.accept, "real", id: "yes")
        #expect(try await bob.ack().of == "yes")
        let delivered = try await alice.next { if case .callSetup = $0.payload { $0.id } else { nil } }
        #expect(delivered == "yes")
        await node.close()
    }

    @Test("over a node link: a caller's 9th ringing call is refused rate-limited (not relayed untimed), and the callee may answer only the calls that ring")
    func linkedCallsAreTimedOrRefused() async throws {
        let here = "192.0.2.1:8080", nodeA = "192.0.2.10:8080"
        let network = NodeRegistry()
        let node = try await HubFixture(node: here, identity: .generate())
        await node.hub.setProver(network.prover)
        let a = Identity.generate()
        network.run(a, at: nodeA)
        let (bob, bobKey) = try await node.loggedIn("bob")[0]
        let link = await node.peer()
        _ = try await link.linked(as: nodeA, a, to: here)
        let alice = Identity.generate()
        for index in 0...HubFixture.maxRingingPerCaller {
            let call = CallSigning.sign(CallPayload(type: .call, from: "alice", to: "bob", call: "l\(index)", kind: .audio, ring: 120, ts: Self.now), with: alice)
            await link.send(.callSetup(.call, call), to: "bob", from: "alice@\(nodeA)", id: "l\(index)")
        }
        let refusal = try await link.error()
        #expect(refusal.code == .rateLimited && refusal.of == "l\(HubFixture.maxRingingPerCaller)", "\(refusal)")
        // bob got the calls that ring here, and answers one of them; one that never rang is refused.
        for index in 0..<HubFixture.maxRingingPerCaller { #expect(try await bob.next().id == "l\(index)") }
        for (call, id) in [("l0", "yes"), ("l-never", "no")] {
            let accept = CallSigning.sign(CallPayload(type: .accept, from: "bob", to: "alice@\(nodeA)", call: call, ts: Self.now), with: bobKey)
            await bob.send(.callSetup(.accept, accept), to: "alice@\(nodeA)", id: id)
        }
        #expect(try await bob.ack().of == "yes")
        let error = try await bob.error()
        #expect(error.code == .forbidden && error.of == "no", "\(error)")
        let relayed = try await link.next { if case .callSetup(.accept, _) = $0.payload { $0.id } else { nil } }
        #expect(relayed == "yes")
        await node.close()
    }
}

extension HubFixture {
    static var maxRingingPerCaller: Int { SignalingHub.maxRingingPerCaller }
}
