import Foundation
import Testing
import TestSupport
@testable import Signaling

/// Issue 16, forwarded calls for members of other nodes (docs/rooms.md "Forwarded calls for
/// members of other nodes"). The room's node signs its forwarder assignment with its node key,
/// which members of other nodes never pinned; their own node checks it under the key its link to
/// the host proved and signs one of its own for them. The tests play the other node: a host that
/// pushes forged, replayed or expired assignments, and a member's node whose peers call the
/// host's forwarder across the link without being in the call.
@Suite struct HubRemoteForwardedTests {
    static let here = HubRoomHistoryTests.here
    static let nodeA = HubRoomHistoryTests.nodeA

    static func request(_ action: RoomCallAction, _ name: String, _ key: Identity, room: String, call: String = "rc-1") -> SignedBody {
        HubRoomCallTests.request(action, name, key, room: room, call: call)
    }

    static func assignment(by signer: Identity, room: String = "#ops", call: String = "rc-1", forwarder: String = "forwarder",
                           key: String, ts: Double = Date().timeIntervalSince1970, lifetime: Double = 600) -> SignedBody {
        ForwarderSigning.sign(ForwarderAssignment(room: room, call: call, forwarder: forwarder, key: key, ts: ts, expires: ts + lifetime),
                              with: signer)
    }

    // MARK: - The member's node: the test is the host B

    @Test func theMembersNodeVouchesOnlyForTheHostsOwnAssignment() async throws {
        let hostB = "198.51.100.20:8080"
        let hostKey = Identity.generate()
        let west = Identity.generate()
        let fixture = try await HubFixture(node: Self.here, identity: west)
        defer { Task { await fixture.close() } }
        // The link proved hostKey for hostB: the only key this node checks B's assignments under.
        let link = await TestLink(fixture.hub, node: hostB, key: hostKey.publicKeyBase64)
        let peers = try await fixture.loggedIn("alice", "carol")
        let alice = peers[0].peer
        let room = "#ops@\(hostB)"
        await alice.send(.join(RoomBody(room: room)), id: "j1")
        _ = try await link.next { message in message.id == "j1" ? true : nil }
        await link.send(SignalingMessage(id: "n1", from: "@node", to: "alice@\(Self.here)", payload: .ack(AckBody(of: "j1", status: .ok))))
        _ = try await alice.ack()

        let start = Self.request(.start, "alice", peers[0].key, room: room)
        let bobJoin = Self.request(.join, "bob", .generate(), room: "#ops")
        let forwarderKey = Identity.generate().publicKeyBase64
        func push(_ forwarder: SignedBody, id: String) async {
            await link.send(SignalingMessage(id: id, from: "@node", to: "alice@\(Self.here)", payload: .roomCall(.state(RoomCallStateBody(
                room: "#ops", call: "rc-1", kind: .video, event: .joined, member: "bob", participants: [start, bobJoin], limit: 20,
                addresses: ["alice@\(Self.here)", "bob"], forwarder: forwarder)))))
        }

        // B's own assignment: alice gets one signed by her node, naming the room and forwarder
        // as she writes them, the same forwarder key, and B with the key it was checked under.
        await push(Self.assignment(by: hostKey, key: forwarderKey), id: "p1")
        let state = try await HubRoomCallTests().state(alice)
        let vouched = try #require(state.forwarder)
        #expect(vouched.key == west.publicKeyBase64)
        let taken = try ForwarderSigning.verify(vouched, nodeKey: west.publicKeyBase64, room: room, call: "rc-1", now: Date().timeIntervalSince1970)
        #expect(taken.forwarder == "forwarder@\(hostB)" && taken.key == forwarderKey && taken.room == room)
        #expect(taken.host == hostB && taken.hostKey == hostKey.publicKeyBase64)
        // The same assignment for a room of that name at another host is not this one.
        #expect(throws: SignalingError.self) {
            try ForwarderSigning.verify(vouched, nodeKey: west.publicKeyBase64, room: "#ops@198.51.100.99:8080", call: "rc-1", now: Date().timeIntervalSince1970)
        }
        // So this node lets alice (a participant) call that forwarder, tagged with the call; not
        // carol (no participant), nor another forwarder name at B.
        #expect(await fixture.hub.roomCallPairRefusal(room: room, roomCall: "rc-1", caller: "alice", callee: "forwarder@\(hostB)") == nil)
        #expect(await fixture.hub.roomCallPairRefusal(room: room, roomCall: "rc-1", caller: "carol", callee: "forwarder@\(hostB)") != nil)
        #expect(await fixture.hub.roomCallPairRefusal(room: room, roomCall: "rc-1", caller: "alice", callee: "forwarder.0011223344556677@\(hostB)") != nil)

        // The attacks: B (or whoever speaks on its link) pushes assignments that are not B's
        // word for this call. Each is refused on the link with its code, and alice hears nothing.
        let mallory = Identity.generate()
        var claimed = Self.assignment(by: mallory, key: forwarderKey)
        claimed.key = hostKey.publicKeyBase64                                  // claims B's key, signed by another
        var altered = Self.assignment(by: hostKey, key: forwarderKey)
        altered.payload = altered.payload.replacingOccurrences(of: forwarderKey, with: mallory.publicKeyBase64)
        let now = Date().timeIntervalSince1970
        let forgeries: [(String, SignedBody, SignalingError.Code)] = [
            ("another key", Self.assignment(by: mallory, key: forwarderKey), .badSignature),
            ("another key claiming B's", claimed, .badSignature),
            ("altered after signing", altered, .badSignature),
            ("signed by this node's own key", Self.assignment(by: west, key: forwarderKey), .badSignature),
            ("replayed for another call", Self.assignment(by: hostKey, call: "rc-0", key: forwarderKey), .badField),
            ("replayed for another room", Self.assignment(by: hostKey, room: "#x", key: forwarderKey), .badField),
            ("expired", Self.assignment(by: hostKey, key: forwarderKey, ts: now - 4000, lifetime: 3600), .stale),
            ("too long lived", Self.assignment(by: hostKey, key: forwarderKey, lifetime: 86_400), .stale),
            ("a peer as forwarder", Self.assignment(by: hostKey, forwarder: "bob", key: forwarderKey), .badField),
            ("a forwarder at another node", Self.assignment(by: hostKey, forwarder: "forwarder@203.0.113.5:443", key: forwarderKey), .badField),
        ]
        for (index, (what, forged, code)) in forgeries.enumerated() {
            await push(forged, id: "f\(index)")
            let refused = try await link.next { message in if case .error(let body) = message.payload, body.of == "f\(index)" { body.code } else { nil } }
            #expect(refused == code, "\(what): \(refused)")
        }
        await alice.send(.ping, id: "sync")
        try await alice.expectNext(id: "sync", "no room-call state for alice after the forgeries")
        // The forwarder B assigned before is still the one alice may call.
        #expect(await fixture.hub.roomCallPairRefusal(room: room, roomCall: "rc-1", caller: "alice", callee: "forwarder@\(hostB)") == nil)
    }

    // MARK: - The host: the test is node A, whose peers alice and carol are members of #ops here

    @Test func theHostLetsOnlyParticipantsOfALinkCallItsForwarder() async throws {
        let network = NodeRegistry()
        let a = Identity.generate()
        network.run(a, at: Self.nodeA)
        let nodeKey = Identity.generate()
        let host = try await HubFixture(node: Self.here, identity: nodeKey) {
            $0.forwarder = true
            $0.roomCallMeshLimit = 2
        }
        defer { Task { await host.close() } }
        await host.hub.setProver(network.prover)
        let link = await host.peer()
        #expect(try await link.linked(as: Self.nodeA, a, to: Self.here).proven == true)
        func answer(_ id: String) async throws -> String { try await link.answer(to: id) }
        // The node's forwarder, logged in with the node key.
        let forwarder = try await host.login(ForwarderAssignment.forwarderName, nodeKey)
        let (bobKey, daveKey) = (Identity.generate(), Identity.generate())
        let bob = try await host.login("bob", bobKey)
        let dave = try await host.login("dave", daveKey)
        try await HubRoomCallTests().joinRoom([bob, dave])
        let (alice, carol) = ("alice@\(Self.nodeA)", "carol@\(Self.nodeA)")
        let aliceKey = Identity.generate()
        for (id, member) in [("aj", alice), ("cj", carol)] {
            await link.send(.join(RoomBody(room: "#ops")), from: member, id: id)
            #expect(try await answer(id) == "ok")
        }
        await link.send(.roomCall(.request(Self.request(.start, "alice", aliceKey, room: "#ops@\(Self.here)"))), to: "#ops", from: alice, id: "s")
        #expect(try await answer("s") == "ok")
        #expect(try await HubRoomCallTests().send(bob, HubRoomCallTests.request(.join, "bob", bobKey), id: "bj") == "ok")
        // The third join passes the limit of 2: forwarded by the node's own forwarder.
        #expect(try await HubRoomCallTests().send(dave, HubRoomCallTests.request(.join, "dave", daveKey), id: "dj") == "ok")
        #expect(await host.hub.roomCalls["#ops"]?.forwarded == true)

        /// A's peer `name` calls the forwarder across the link: "relayed", or the error code the
        /// host answers on the link (the ping after it tells that none came).
        func call(from name: String, key: Identity, room: String?, roomCall: String?, id: String) async throws -> String {
            var payload = CallPayload(type: .call, from: name, to: "forwarder@\(Self.here)", call: "c-\(id)", kind: .video, ts: Date().timeIntervalSince1970)
            payload.room = room
            payload.roomCall = roomCall
            await link.send(.callSetup(.call, CallSigning.sign(payload, with: key)), to: ForwarderAssignment.forwarderName,
                            from: "\(name)@\(Self.nodeA)", id: id)
            await link.send(.ping, id: "sync-\(id)")
            return try await link.next { message in
                if case .error(let body) = message.payload, body.of == id { body.code.rawValue } else if message.id == "sync-\(id)" { "relayed" } else { nil }
            }
        }
        func relayedToForwarder(_ id: String) async throws -> Bool {
            try await forwarder.next { message in
                if case .callSetup(.call, let body) = message.payload,
                   let payload = try? JSONDecoder().decode(CallPayload.self, from: Data(body.payload.utf8)) { payload.call == "c-\(id)" } else { nil }
            }
        }
        // Attacks by A's peers: carol is a member but not in the call; alice tags another call,
        // her node's own #ops (no host), or nothing at all.
        let carolKey = Identity.generate()
        for (id, name, key, room, roomCall) in [("c1", "carol", carolKey, "#ops@\(Self.here)", "rc-1"),
                                                ("c2", "alice", aliceKey, "#ops@\(Self.here)", "rc-0"),
                                                ("c3", "alice", aliceKey, "#ops", "rc-1")] {
            #expect(try await call(from: name, key: key, room: room, roomCall: roomCall, id: id) == "forbidden", "\(id): \(name) tagged \(room) \(roomCall)")
        }
        #expect(try await call(from: "alice", key: aliceKey, room: nil, roomCall: nil, id: "c4") == "forbidden")
        // alice, a participant, tagging the call as her node writes the room: relayed.
        #expect(try await call(from: "alice", key: aliceKey, room: "#ops@\(Self.here)", roomCall: "rc-1", id: "ok") == "relayed")
        #expect(try await relayedToForwarder("ok"))
    }
}
