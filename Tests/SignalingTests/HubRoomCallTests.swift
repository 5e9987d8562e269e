import Foundation
import Testing
import TestSupport
@testable import Signaling

/// Issue 16, step 1 at the hub (docs/protocol.md "Room calls"): a room call's state kept by the
/// room's node — start rings the members, join, leave, the last one out ends it — and the
/// attacks on it, played by the test: a non-member, a forged request, a replay, a flood of
/// starts, a participant who vanishes.
@Suite struct HubRoomCallTests {
    static func request(_ action: RoomCallAction, _ name: String, _ key: Identity, room: String = "#ops", call: String = "rc-1",
                        ts: Double = Date().timeIntervalSince1970) -> SignedBody {
        RoomCallSigning.sign(RoomCallPayload(action: action, from: name, room: room, call: call, kind: action == .start ? .video : nil, ts: ts), with: key)
    }

    /// The next room-call state `peer` hears.
    func state(_ peer: TestPeer) async throws -> RoomCallStateBody {
        try await peer.next { if case .roomCall(.state(let body)) = $0.payload { body } else { nil } }
    }

    /// What `peer` got for request `id`: "ok", "duplicate" or the error code.
    func answer(_ peer: TestPeer, _ id: String) async throws -> String {
        try await peer.next { message in
            switch message.payload {
            case .ack(let body) where body.of == id: body.status?.rawValue ?? "ok"
            case .error(let body) where body.of == id: body.code.rawValue
            default: nil
            }
        }
    }

    func send(_ peer: TestPeer, _ body: SignedBody, room: String = "#ops", id: String) async throws -> String {
        await peer.send(.roomCall(.request(body)), to: room, id: id)
        return try await answer(peer, id)
    }

    func joinRoom(_ peers: [TestPeer], _ room: String = "#ops") async throws {
        for peer in peers {
            await peer.send(.join(RoomBody(room: room)), id: "join-\(room)")
            _ = try await answer(peer, "join-\(room)")
        }
    }

    /// Who is in the call, as a member checks it: each participant's own signature, under the
    /// key it logged in with, saying it joined this call.
    func verifiedParticipants(_ state: RoomCallStateBody, keys: [String: Identity]) -> [String] {
        state.participants.compactMap { body in
            guard let payload = try? JSONDecoder().decode(RoomCallPayload.self, from: Data(body.payload.utf8)),
                  let key = keys[payload.from],
                  (try? RoomCallSigning.verify(body, from: payload.from, room: state.room, key: key.publicKeyBase64)) != nil,
                  payload.call == state.call else { return nil }
            return payload.from
        }
    }

    @Test func membersAreRungJoinLeaveAndTheLastOutEndsIt() async throws {
        let node = try await HubFixture()
        defer { Task { await node.close() } }
        let peers = try await node.loggedIn("alice", "bob", "carol", "dave")
        let (alice, bob, carol, dave) = (peers[0].peer, peers[1].peer, peers[2].peer, peers[3].peer)
        let keys = ["alice": peers[0].key, "bob": peers[1].key, "carol": peers[2].key, "dave": peers[3].key]
        try await joinRoom([alice, bob, carol])

        #expect(try await send(alice, Self.request(.start, "alice", keys["alice"]!), id: "s") == "ok")
        for peer in [alice, bob, carol] {
            let rung = try await state(peer)
            #expect(rung.event == .started && rung.call == "rc-1" && rung.kind == .video && rung.ring == 30 && rung.member == "alice")
            #expect(verifiedParticipants(rung, keys: keys) == ["alice"])
        }
        // dave is no member: he hears nothing of it, and may neither join nor start.
        #expect(try await send(dave, Self.request(.join, "dave", keys["dave"]!), id: "d1") == "not-member")
        #expect(try await send(dave, Self.request(.start, "dave", keys["dave"]!, call: "rc-2"), id: "d2") == "not-member")
        await dave.send(.ping, id: "marker")
        try await dave.expectNext(id: "marker", "no room-call state for a non-member")

        #expect(try await send(bob, Self.request(.join, "bob", keys["bob"]!), id: "b1") == "ok")
        let joined = try await state(carol)
        #expect(joined.event == .joined && joined.member == "bob")
        #expect(verifiedParticipants(joined, keys: keys) == ["alice", "bob"])
        // A member who comes online while the call runs hears its current state at login.
        await node.hub.closed(carol.handle.id)
        let carolAgain = try await node.login("carol", keys["carol"]!)
        let current = try await state(carolAgain)
        #expect(current.event == .current && current.call == "rc-1" && verifiedParticipants(current, keys: keys) == ["alice", "bob"])
        // A join naming another call id is no join of this one.
        #expect(try await send(carolAgain, Self.request(.join, "carol", keys["carol"]!, call: "rc-other"), id: "c0") == "forbidden")

        #expect(try await send(bob, Self.request(.leave, "bob", keys["bob"]!), id: "b2") == "ok")
        #expect(try await state(carolAgain).event == .left)
        #expect(try await send(alice, Self.request(.leave, "alice", keys["alice"]!), id: "a2") == "ok")
        let ended = try await state(carolAgain)
        #expect(ended.event == .ended && ended.participants.isEmpty)
        #expect(await node.hub.roomCalls.isEmpty)
        // Over: a late join is refused, and a new call may start.
        #expect(try await send(carolAgain, Self.request(.join, "carol", keys["carol"]!), id: "c1") == "forbidden")
        #expect(try await send(carolAgain, Self.request(.start, "carol", keys["carol"]!, call: "rc-3"), id: "c2") == "ok")
    }

    @Test func forgedRequestsAreRefused() async throws {
        let node = try await HubFixture()
        defer { Task { await node.close() } }
        let peers = try await node.loggedIn("alice", "bob", "mallory")
        let (alice, bob, mallory) = (peers[0].peer, peers[1].peer, peers[2].peer)
        let (aliceKey, bobKey, malloryKey) = (peers[0].key, peers[1].key, peers[2].key)
        try await joinRoom([alice, bob, mallory])
        #expect(try await send(alice, Self.request(.start, "alice", aliceKey), id: "s") == "ok")
        // mallory (a member) puts bob into the call: a join that says bob, signed by her key...
        #expect(try await send(mallory, Self.request(.join, "bob", malloryKey), id: "m1") == "bad-signature")
        // ...or bob's key with her signature, or a body of bob's replayed from another room.
        var stolen = Self.request(.join, "mallory", malloryKey)
        stolen.key = bobKey.publicKeyBase64
        #expect(try await send(mallory, stolen, id: "m2") == "bad-signature")
        try await joinRoom([bob, mallory], "#other")
        let bobsOther = Self.request(.join, "bob", bobKey, room: "#other")
        #expect(try await send(mallory, bobsOther, id: "m3") == "bad-signature")
        // A request signed for another room does not pass in this one.
        #expect(try await send(mallory, Self.request(.join, "mallory", malloryKey, room: "#other"), room: "#ops", id: "m4") == "bad-signature")
        // Old, and replayed: bob's own join, sent twice.
        #expect(try await send(mallory, Self.request(.join, "mallory", malloryKey, ts: Date().timeIntervalSince1970 - 600), id: "m5") == "stale")
        let bobsJoin = Self.request(.join, "bob", bobKey)
        #expect(try await send(bob, bobsJoin, id: "b1") == "ok")
        #expect(try await send(bob, bobsJoin, id: "b2") == "replayed")
        // Only the node sends state: a client's forged participant list is refused outright.
        let forged = RoomCallStateBody(room: "#ops", call: "rc-1", kind: .video, event: .joined, member: "mallory",
                                       participants: [bobsJoin], limit: 4)
        await mallory.send(.roomCall(.state(forged)), to: "#ops", id: "m6")
        #expect(try await answer(mallory, "m6") == "forbidden")
        // mallory cannot take bob out either.
        #expect(try await send(mallory, Self.request(.leave, "bob", malloryKey), id: "m7") == "bad-signature")
        #expect(await node.hub.roomCalls["#ops"]?.participants.map(\.name) == ["alice", "bob"])
    }

    @Test func startsAndParticipantsAreBounded() async throws {
        let node = try await HubFixture { $0.roomCallMeshLimit = 2; $0.maxRoomCalls = 4 }
        defer { Task { await node.close() } }
        let peers = try await node.loggedIn("alice", "bob", "carol")
        let (alice, bob, carol) = (peers[0].peer, peers[1].peer, peers[2].peer)
        let rooms = ["#ops", "#r1", "#r2", "#r3", "#r4"]
        for room in rooms { try await joinRoom([alice, bob, carol], room) }
        // Peer to peer holds `roomCallMeshLimit` participants; the next is told why.
        #expect(try await send(alice, Self.request(.start, "alice", peers[0].key), id: "s") == "ok")
        #expect(try await send(bob, Self.request(.join, "bob", peers[1].key), id: "b") == "ok")
        #expect(try await send(carol, Self.request(.join, "carol", peers[2].key), id: "c") == "store-full")
        // One call per room: a second start is refused (the running one is joined instead).
        #expect(try await send(carol, Self.request(.start, "carol", peers[2].key, call: "rc-x"), id: "c2") == "forbidden")
        // A flood of starts from one connection: 3 at once, then one per 10 s.
        #expect(try await send(alice, Self.request(.start, "alice", peers[0].key, room: "#r1", call: "f1"), room: "#r1", id: "f1") == "ok")
        #expect(try await send(alice, Self.request(.start, "alice", peers[0].key, room: "#r2", call: "f2"), room: "#r2", id: "f2") == "ok")
        #expect(try await send(alice, Self.request(.start, "alice", peers[0].key, room: "#r3", call: "f3"), room: "#r3", id: "f3") == "rate-limited")
        // The node's bound: 4 room calls, whoever starts them.
        #expect(try await send(bob, Self.request(.start, "bob", peers[1].key, room: "#r3", call: "g3"), room: "#r3", id: "g3") == "ok")
        #expect(try await send(carol, Self.request(.start, "carol", peers[2].key, room: "#r4", call: "g4"), room: "#r4", id: "g4") == "store-full")
        #expect(await node.hub.roomCalls.count == 4)
        // Leaving the room leaves its call.
        await bob.send(.leave(RoomBody(room: "#r3")), id: "l")
        #expect(try await answer(bob, "l") == "ok")
        #expect(await node.hub.roomCalls["#r3"] == nil)
        // A room of another node that alice never joined (HubRemoteRoomCallTests has the rest).
        #expect(try await send(alice, Self.request(.start, "alice", peers[0].key, room: "#ops@192.0.2.9:8080", call: "z"),
                               room: "#ops@192.0.2.9:8080", id: "z") == "not-member")
    }

    @Test func aParticipantGoneLongerThanTheGraceLeaves() async throws {
        let clock = ManualClock()
        let node = try await HubFixture(heartbeat: .seconds(600), clock: clock)
        defer { Task { await node.close() } }
        let peers = try await node.loggedIn("alice", "bob")
        let (alice, bob) = (peers[0].peer, peers[1].peer)
        try await joinRoom([alice, bob])
        #expect(try await send(alice, Self.request(.start, "alice", peers[0].key), id: "s") == "ok")
        #expect(try await send(bob, Self.request(.join, "bob", peers[1].key), id: "b") == "ok")
        _ = try await state(alice)
        _ = try await state(alice)
        // bob's network drops; he reconnects within the grace and joins again: still in.
        await node.hub.closed(bob.handle.id)
        await node.hub.sweep()
        clock.advance(by: .seconds(20))
        let bobAgain = try await node.login("bob", peers[1].key)
        #expect(try await state(bobAgain).event == .current)
        #expect(try await send(bobAgain, Self.request(.join, "bob", peers[1].key), id: "b2") == "ok")
        clock.advance(by: .seconds(20))
        await node.hub.sweep()
        #expect(await node.hub.roomCalls["#ops"]?.participants.map(\.name) == ["alice", "bob"])
        // Gone for good: after the grace (30 s) he is out, and alice hears it.
        await node.hub.closed(bobAgain.handle.id)
        await node.hub.sweep()
        clock.advance(by: .seconds(31))
        await node.hub.sweep()
        let left = try await alice.next { message -> RoomCallStateBody? in
            if case .roomCall(.state(let body)) = message.payload, body.event == .left { body } else { nil }
        }
        #expect(left.member == "bob" && left.participants.count == 1)
        // And a call whose last participant vanished ends.
        await node.hub.closed(alice.handle.id)
        await node.hub.sweep()
        clock.advance(by: .seconds(31))
        await node.hub.sweep()
        #expect(await node.hub.roomCalls.isEmpty)
    }
}

/// docs/rooms.md step 3: a pairwise call tagged with a room call rings only between two of its
/// participants.
@Suite struct HubRoomCallPairTests {
    @Test func aTaggedCallRingsOnlyBetweenParticipants() async throws {
        let node = try await HubFixture()
        defer { Task { await node.close() } }
        let peers = try await node.loggedIn("alice", "bob", "carol")
        let (alice, bob, carol) = (peers[0].peer, peers[1].peer, peers[2].peer)
        for peer in [alice, bob, carol] {
            await peer.send(.join(RoomBody(room: "#ops")), id: "j")
            _ = try await peer.ack()
        }
        func pair(_ from: TestPeer, _ name: String, _ key: Identity, to: String, roomCall: String = "rc-1", id: String) async throws -> String {
            var payload = CallPayload(type: .call, from: name, to: to, call: "p-\(id)", kind: .video, ts: Date().timeIntervalSince1970)
            payload.room = "#ops"
            payload.roomCall = roomCall
            await from.send(.callSetup(.call, CallSigning.sign(payload, with: key)), to: to, id: id)
            return try await from.answer(to: id)
        }
        // No room call yet: a tagged call is refused.
        #expect(try await pair(alice, "alice", peers[0].key, to: "bob", id: "t0") == "forbidden")
        await alice.send(.roomCall(.request(HubRoomCallTests.request(.start, "alice", peers[0].key))), to: "#ops", id: "s")
        _ = try await alice.ack()
        await bob.send(.roomCall(.request(HubRoomCallTests.request(.join, "bob", peers[1].key))), to: "#ops", id: "b")
        _ = try await bob.ack()
        #expect(try await pair(alice, "alice", peers[0].key, to: "bob", id: "t1") == "ok")
        let rung = try await bob.next { message -> CallPayload? in
            if case .callSetup(.call, let body) = message.payload { try? JSONDecoder().decode(CallPayload.self, from: Data(body.payload.utf8)) } else { nil }
        }
        #expect(rung.room == "#ops" && rung.roomCall == "rc-1" && rung.call == "p-t1")
        // carol is a member but not in the call: she may neither place nor get such a call.
        #expect(try await pair(carol, "carol", peers[2].key, to: "alice", id: "t2") == "forbidden")
        #expect(try await pair(alice, "alice", peers[0].key, to: "carol", id: "t3") == "forbidden")
        #expect(try await pair(alice, "alice", peers[0].key, to: "bob", roomCall: "rc-other", id: "t4") == "forbidden")
    }
}
