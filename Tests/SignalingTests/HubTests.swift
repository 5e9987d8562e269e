import Foundation
import Testing
import TestSupport
@testable import Signaling

/// The hub's behaviour as a client sees it, without sockets (docs/protocol.md).
@Suite struct HubTests {
    @Test func loginBindsTheNameOnFirstUseAndRefusesAnotherKey() async throws {
        let node = try await HubFixture()
        let alice = Identity.generate()
        let first = await node.peer()
        let welcome = try await first.login("alice", alice)
        #expect(welcome.name == "alice" && welcome.key == alice.publicKeyBase64)
        #expect(welcome.iceServers.first?.username == "1:alice")

        let impostor = await node.peer()
        let nonce = try await impostor.next { if case .challenge(let b) = $0.payload { b.nonce } else { nil } }
        let mallory = Identity.generate()
        await impostor.send(.login(LoginBody.signed(name: "alice", identity: mallory, nonce: nonce)))
        #expect(try await impostor.error().code == .nameTaken)
        // A fresh challenge follows; the connection survives and may log in as someone else.
        try await impostor.login("mallory", mallory)
        await node.close()
    }

    @Test func loginWithABadSignatureOrReplayedNonceFails() async throws {
        let node = try await HubFixture()
        let alice = Identity.generate()
        let peer = await node.peer()
        let nonce = try await peer.next { if case .challenge(let b) = $0.payload { b.nonce } else { nil } }
        await peer.send(.login(LoginBody(name: "alice", key: alice.publicKeyBase64, node: HubFixture.authority, sig: alice.sign(text: "something else"))))
        #expect(try await peer.error().code == .badSignature)
        // The nonce was used up: signing it again does not work.
        await peer.send(.login(LoginBody.signed(name: "alice", identity: alice, nonce: nonce)))
        #expect(try await peer.error().code == .badSignature)
        await node.close()
    }

    @Test func everythingButLoginNeedsALogin() async throws {
        let node = try await HubFixture()
        let peer = await node.peer()
        await peer.send(.chat(ChatBody(text: "hi")), to: "bob")
        #expect(try await peer.error().code == .notLoggedIn)
        await node.close()
    }

    @Test func presenceGoesToSubscribers() async throws {
        let node = try await HubFixture()
        let watcher = try await node.login("watcher", .generate())
        await watcher.send(.subscribe(NamesBody(names: ["bob"])))
        #expect(try await watcher.ack().status == .ok)
        #expect(try await watcher.next() .payload == .presence(PresenceBody(name: "bob", status: .offline, key: nil)))
        let bobKey = Identity.generate()
        let bob = try await node.login("bob", bobKey)
        #expect(try await watcher.next().payload == .presence(PresenceBody(name: "bob", status: .online, key: bobKey.publicKeyBase64)))
        await node.hub.closed(bob.handle.id)
        #expect(try await watcher.next().payload == .presence(PresenceBody(name: "bob", status: .offline, key: bobKey.publicKeyBase64)))
        await node.close()
    }

    @Test func chatIsAcknowledgedAndResendsAreNotDeliveredTwice() async throws {
        let node = try await HubFixture()
        let alice = try await node.login("alice", .generate())
        let bob = try await node.login("bob", .generate())
        await alice.send(.chat(ChatBody(text: "one")), to: "bob", id: "m1")
        #expect(try await alice.ack() == AckBody(of: "m1", status: .ok))
        let delivered = try await bob.next()
        #expect(delivered.id == "m1" && delivered.from == "alice")
        guard case .chat(let body) = delivered.payload else { throw TestFailure("not chat: \(delivered)") }
        #expect(body.text == "one" && body.sent != nil)
        await alice.send(.chat(ChatBody(text: "one")), to: "bob", id: "m1")
        #expect(try await alice.ack() == AckBody(of: "m1", status: .duplicate))
        // The next chat is what bob gets next: the resend was not delivered before it.
        await alice.send(.chat(ChatBody(text: "two")), to: "bob", id: "m2")
        try await bob.expectNext(id: "m2", "the next chat, not the resend")
        await node.close()
    }

    @Test func offlinePeersGetTheirMessagesAtLoginUntilTheyAcknowledge() async throws {
        let node = try await HubFixture()
        let bobKey = Identity.generate()
        let bob = try await node.login("bob", bobKey)
        await node.hub.closed(bob.handle.id)
        let alice = try await node.login("alice", .generate())
        for index in 1...3 {
            await alice.send(.chat(ChatBody(text: "m\(index)")), to: "bob", id: "m\(index)")
            _ = try await alice.ack()
        }
        // bob comes back without acknowledging: everything comes again next time.
        let again = try await node.login("bob", bobKey)
        for index in 1...3 { #expect(try await again.next().id == "m\(index)") }
        await again.send(.ack(AckBody(of: "m1", sender: "alice")), from: "bob")
        await again.send(.ack(AckBody(of: "m2", sender: "alice")), from: "bob")
        await node.hub.closed(again.handle.id)
        let third = try await node.login("bob", bobKey)
        #expect(try await third.next().id == "m3")
        // Nothing acknowledged comes again: a new chat is the next frame.
        await alice.send(.chat(ChatBody(text: "m4")), to: "bob", id: "m4")
        try await third.expectNext(id: "m4", "the new chat, not an acknowledged one")
        await node.close()
    }

    @Test func chatToAnUnknownPeerIsAnError() async throws {
        let node = try await HubFixture()
        let alice = try await node.login("alice", .generate())
        await alice.send(.chat(ChatBody(text: "x")), to: "nobody", id: "m1")
        let error = try await alice.error()
        #expect(error.code == .unknownRecipient && error.of == "m1")
        await node.close()
    }

    @Test func roomsJoinLeaveMembersAndGroupChat() async throws {
        let node = try await HubFixture()
        let alice = try await node.login("alice", .generate())
        let bob = try await node.login("bob", .generate())
        await alice.send(.chat(ChatBody(text: "early")), to: "#ops")
        #expect(try await alice.error().code == .notMember)
        await alice.send(.join(RoomBody(room: "#ops")))
        _ = try await alice.ack()
        await bob.send(.join(RoomBody(room: "#ops")))
        _ = try await bob.ack()
        #expect(try await alice.next { if case .room(let e) = $0.payload { e } else { nil } } == RoomEventBody(room: "#ops", member: "alice", event: .joined))
        #expect(try await alice.next { if case .room(let e) = $0.payload { e } else { nil } } == RoomEventBody(room: "#ops", member: "bob", event: .joined))
        await alice.send(.members(MembersBody(room: "#ops")), id: "q")
        let members = try await alice.next { if case .members(let b) = $0.payload { b } else { nil } }
        #expect(members.of == "q" && members.members?.map(\.name) == ["alice", "bob"])
        await alice.send(.chat(ChatBody(text: "hello room")), to: "#ops", id: "r1")
        #expect(try await alice.ack().of == "r1")
        let delivered = try await bob.next { if case .chat = $0.payload { $0 } else { nil } }
        #expect(delivered.to == "#ops" && delivered.from == "alice")
        await bob.send(.leave(RoomBody(room: "#ops")))
        #expect(try await alice.next { if case .room(let e) = $0.payload { e } else { nil } } == RoomEventBody(room: "#ops", member: "bob", event: .left))
        await node.close()
    }

    @Test func callSetupIsRelayedVerifiedAndTimedOut() async throws {
        let node = try await HubFixture()
        let aliceKey = Identity.generate()
        let alice = try await node.login("alice", aliceKey)
        let bob = try await node.login("bob", .generate())
        let call = CallSigning.sign(CallPayload(type: .call, from: "alice", to: "bob", call: "c1", kind: .video, ring: 1, ts: Date().timeIntervalSince1970), with: aliceKey)
        await alice.send(.callSetup(.call, call), to: "bob", id: "x1")
        #expect(try await alice.ack().of == "x1")
        #expect(try await bob.next().payload == .callSetup(.call, call))
        // Nobody answers: both get a timeout after the ring time.
        #expect(try await bob.next().payload == .timeout(TimeoutBody(call: "c1")))
        #expect(try await alice.next().payload == .timeout(TimeoutBody(call: "c1")))

        // A body altered after signing never reaches bob.
        var tampered = CallSigning.sign(CallPayload(type: .sdp, from: "alice", to: "bob", call: "c1", sdp: "a=fingerprint:sha-256 AA", ts: Date().timeIntervalSince1970), with: aliceKey)
        tampered.payload = tampered.payload.replacingOccurrences(of: "AA", with: "BB")
        await alice.send(.callSetup(.sdp, tampered), to: "bob", id: "x2")
        let error = try await alice.error()
        #expect(error.code == .badSignature && error.of == "x2")
        await alice.send(.chat(ChatBody(text: "after the tampered sdp")), to: "bob", id: "x3")
        try await bob.expectNext(id: "x3", "the chat sent after the tampered sdp")
        await node.close()
    }

    @Test func callsToOfflinePeersAreUnavailable() async throws {
        let node = try await HubFixture()
        let aliceKey = Identity.generate()
        let alice = try await node.login("alice", aliceKey)
        let call = CallSigning.sign(CallPayload(type: .call, from: "alice", to: "bob", call: "c1", kind: .audio, ts: Date().timeIntervalSince1970), with: aliceKey)
        await alice.send(.callSetup(.call, call), to: "bob")
        #expect(try await alice.error().code == .unavailable)
        await node.close()
    }

    @Test func claimingAnotherNameIsForbidden() async throws {
        let node = try await HubFixture()
        let alice = try await node.login("alice", .generate())
        await alice.send(.subscribe(NamesBody(names: ["x"])), from: "bob", id: "f1")
        let error = try await alice.error()
        #expect(error.code == .forbidden && error.of == "f1")
        await node.close()
    }

    @Test func badFramesGetErrorsAndTheConnectionSurvives() async throws {
        let node = try await HubFixture()
        let alice = try await node.login("alice", .generate())
        await alice.send("{nope")
        #expect(try await alice.error().code == .badJSON)
        await alice.send(#"{"type":"warp","id":"w","body":{}}"#)
        #expect(try await alice.error().code == .unknownType)
        await alice.send(String(repeating: " ", count: SignalingProtocol.maxFrameBytes + 1))
        #expect(try await alice.error().code == .tooLarge)
        await node.hub.receiveBinary(on: alice.handle.id)
        #expect(try await alice.error().code == .badFrame)
        await alice.send(.welcome(WelcomeBody(name: "x", key: "y", heartbeat: 1, iceServers: [])))
        #expect(try await alice.error().code == .forbidden)
        await alice.send(.ping, id: "p1")
        #expect(try await alice.next().payload == .pong)
        await node.close()
    }

    /// docs/protocol.md "Limits": a token bucket of `burst` frames refilled at `rate` per second.
    /// The hub's clock stands still unless the test moves it, so the counts are exact.
    @Test func floodsAreRateLimitedWithoutClosing() async throws {
        let clock = ManualClock()
        let node = try await HubFixture(rate: 10, burst: 20, clock: clock)
        let alice = await node.peer()
        try await alice.login("alice", .generate())  // one frame of the burst
        func flood(_ count: Int) async throws -> (pongs: Int, limited: Int) {
            for index in 0..<count { await alice.send(.ping, id: "p\(index)") }
            var pongs = 0, limited = 0
            for _ in 0..<count {  // every frame gets exactly one answer
                let message = try await alice.next()
                if case .pong = message.payload { pongs += 1 }
                if case .error(let body) = message.payload, body.code == .rateLimited { limited += 1 }
            }
            return (pongs, limited)
        }
        let burst = try await flood(60)
        #expect(burst.pongs == 19 && burst.limited == 41)
        // Half a second refills five tokens.
        clock.advance(by: .milliseconds(500))
        let refill = try await flood(8)
        #expect(refill.pongs == 5 && refill.limited == 3)
        #expect(await !alice.isClosed)
        await node.close()
    }

    /// docs/protocol.md "Liveness": silent for 1.5 intervals, dropped within two, announced
    /// offline. The sweeper runs every quarter interval; here the test is the sweeper, on a
    /// clock it advances, while the watcher keeps pinging.
    @Test func silentConnectionsAreDroppedAndAnnouncedOffline() async throws {
        let clock = ManualClock()
        let heartbeat = Duration.seconds(15)
        let node = try await HubFixture(heartbeat: heartbeat, clock: clock)
        let watcher = try await node.login("watcher", .generate())
        let bob = try await node.login("bob", .generate())
        await watcher.send(.subscribe(NamesBody(names: ["bob"])))
        _ = try await watcher.ack()
        _ = try await watcher.next()  // bob online
        var sweeps = 0
        while await node.hub.onlineNames.contains("bob") {
            try #require(sweeps < 12, "bob still online after three intervals")
            clock.advance(by: heartbeat / 4)
            await watcher.send(.ping, id: "ping\(sweeps)")
            try await watcher.expectNext(id: "ping\(sweeps)", "the pong")
            await node.hub.sweep()
            sweeps += 1
        }
        // Silent for more than 1.5 intervals (six quarters) at the seventh sweep: within two.
        #expect(sweeps == 7)
        let offline = try await watcher.next { if case .presence(let body) = $0.payload { body } else { nil } }
        #expect(offline.status == .offline && offline.name == "bob")
        try await waitUntil("bob's connection to close") { await bob.isClosed }
        #expect(await node.hub.onlineNames == ["watcher"])
        #expect(await !watcher.isClosed)
        await node.close()
    }

    /// The sweeper task itself: on the real clock, a silent connection goes, however long that
    /// takes on a busy machine.
    @Test func theSweeperDropsSilentConnections() async throws {
        let node = try await HubFixture(heartbeat: .milliseconds(200))
        let sweeper = Task { await node.hub.runSweeper() }
        defer { sweeper.cancel() }
        let bob = try await node.login("bob", .generate())
        try await waitUntil("the sweeper to drop bob") { await bob.isClosed }
        #expect(await node.hub.onlineNames.isEmpty)
        await node.close()
    }
}
