import Foundation
import Testing
import TestSupport
@testable import Signaling

/// Issue 16, room calls in a room of another node at the hub (docs/rooms.md "Room calls in a
/// room of another node"): the host takes a linked node's relayed `room-call` requests and
/// pushes the state back over the link; a member's node relays its peers' requests and hands
/// on the host's pushes to confirmed members only. The test plays the other node each time,
/// and with it the attacks: a linked node speaking for another node's peer, for a non-member,
/// or replaying a signed request as another participant; a host pushing state for a name that
/// is no member, or too long a list.
@Suite struct HubRemoteRoomCallTests {
    static let here = HubRoomHistoryTests.here
    static let nodeA = HubRoomHistoryTests.nodeA

    static func request(_ action: RoomCallAction, _ name: String, _ key: Identity, room: String, call: String = "rc-1") -> SignedBody {
        HubRoomCallTests.request(action, name, key, room: room, call: call)
    }

    // MARK: - The host: the test is node A, whose peer alice is a member of #ops here

    @Test func theHostTakesRelayedRequestsAndPushesStateOverTheLink() async throws {
        let (host, link, _) = try await HubRoomHistoryTests().linkedHost()
        defer { Task { await host.close() } }
        let bobKey = Identity.generate()
        let bob = try await host.login("bob", bobKey)
        await bob.send(.join(RoomBody(room: "#ops")), id: "j")
        _ = try await bob.ack()
        func answer(_ id: String) async throws -> String { try await link.answer(to: id) }
        let alice = "alice@\(Self.nodeA)"
        await link.send(.join(RoomBody(room: "#ops")), from: alice, id: "aj")
        #expect(try await answer("aj") == "ok")
        let aliceKey = Identity.generate()
        // alice signed at A, where the room is #ops@<here>.
        let start = Self.request(.start, "alice", aliceKey, room: "#ops@\(Self.here)")
        await link.send(.roomCall(.request(start)), to: "#ops", from: alice, id: "s")
        #expect(try await answer("s") == "ok")
        // bob here is rung, with alice's address as he writes it.
        let rung = try await HubRoomCallTests().state(bob)
        #expect(rung.event == .started && rung.member == alice && rung.addresses == [alice] && rung.participants == [start])
        // A hears it for alice, addresses as A writes them (hers qualified with A).
        let pushed = try await link.next { message in if case .roomCall(.state(let body)) = message.payload { (message, body) } else { nil } }
        #expect(pushed.0.to == alice && pushed.1.room == "#ops" && pushed.1.addresses == [alice])
        #expect(try await HubRoomCallTests().send(bob, HubRoomCallTests.request(.join, "bob", bobKey), id: "bj") == "ok")
        let joined = try await link.next { message in if case .roomCall(.state(let body)) = message.payload, body.event == .joined { body } else { nil } }
        #expect(joined.addresses == [alice, "bob@\(Self.here)"] && joined.member == "bob@\(Self.here)")
        // The pairwise call bob places to alice is one of the call's (checked here, the host).
        #expect(await host.hub.roomCallPairRefusal(room: "#ops", roomCall: "rc-1", caller: "bob", callee: alice) == nil)

        // Attacks by A. A peer of another node is not A's to speak for.
        let eveKey = Identity.generate()
        await link.send(.roomCall(.request(Self.request(.join, "eve", eveKey, room: "#ops@\(Self.here)"))), to: "#ops", from: "eve@198.51.100.7:8080", id: "e")
        #expect(try await answer("e") == "forbidden")
        // A peer of A's that is no member.
        let malloryKey = Identity.generate()
        await link.send(.roomCall(.request(Self.request(.join, "mallory", malloryKey, room: "#ops@\(Self.here)"))), to: "#ops", from: "mallory@\(Self.nodeA)", id: "m")
        #expect(try await answer("m") == "not-member")
        // alice's signed start replayed as another member's join: the signed name differs.
        await link.send(.join(RoomBody(room: "#ops")), from: "carol@\(Self.nodeA)", id: "cj")
        #expect(try await answer("cj") == "ok")
        // carol joined the room while the call runs: A hears its current state for her, after the ack.
        let current = try await link.next { message in
            if case .roomCall(.state(let body)) = message.payload, message.to == "carol@\(Self.nodeA)" { body } else { nil }
        }
        #expect(current.event == .current && current.addresses == [alice, "bob@\(Self.here)"])
        await link.send(.roomCall(.request(Self.request(.join, "alice", aliceKey, room: "#ops@\(Self.here)"))), to: "#ops", from: "carol@\(Self.nodeA)", id: "c")
        #expect(try await answer("c") == "bad-signature")
        // A request alice signed for a room of her own node named #ops (no node): not this room.
        let carolKey = Identity.generate()
        await link.send(.roomCall(.request(Self.request(.join, "carol", carolKey, room: "#ops"))), to: "#ops", from: "carol@\(Self.nodeA)", id: "c2")
        #expect(try await answer("c2") == "bad-signature")
        #expect(await host.hub.roomCalls["#ops"]?.participants.map(\.name) == [alice, "bob"])
        // alice leaves through A; bob is the last.
        await link.send(.roomCall(.request(Self.request(.leave, "alice", aliceKey, room: "#ops@\(Self.here)"))), to: "#ops", from: alice, id: "l")
        #expect(try await answer("l") == "ok")
        #expect(await host.hub.roomCalls["#ops"]?.participants.map(\.name) == ["bob"])
    }

    // MARK: - The member's node: the test is the host B

    @Test func aMembersNodeRelaysRequestsAndHandsOnStateForMembersOnly() async throws {
        let hostB = "198.51.100.20:8080"
        let fixture = try await HubFixture(node: Self.here, identity: .generate())
        defer { Task { await fixture.close() } }
        let link = await TestLink(fixture.hub, node: hostB)
        func fromNode<T>(_ match: (SignalingMessage) -> T?) async throws -> T { try await link.next(match) }
        func toNode(_ message: SignalingMessage) async { await link.send(message) }
        let peers = try await fixture.loggedIn("alice", "carol")
        let (alice, carol) = (peers[0].peer, peers[1].peer)
        let room = "#ops@\(hostB)"

        // Not a member yet: refused here, nothing relayed.
        #expect(try await HubRoomCallTests().send(alice, Self.request(.start, "alice", peers[0].key, room: room), room: room, id: "s0") == "not-member")
        await alice.send(.join(RoomBody(room: room)), id: "j1")
        _ = try await fromNode { message in message.id == "j1" ? true : nil }
        await toNode(SignalingMessage(id: "n1", from: "@node", to: "alice@\(Self.here)", payload: .ack(AckBody(of: "j1", status: .ok))))
        _ = try await alice.ack()

        let start = Self.request(.start, "alice", peers[0].key, room: room)
        await alice.send(.roomCall(.request(start)), to: room, id: "s1")
        let relayed = try await fromNode { message in if case .roomCall(.request(let body)) = message.payload { (message, body) } else { nil } }
        #expect(relayed.0.from == "alice@\(Self.here)" && relayed.0.to == "#ops" && relayed.1.payload == start.payload)
        await toNode(SignalingMessage(id: "n2", from: "@node", to: "alice@\(Self.here)", payload: .ack(AckBody(of: "s1", status: .ok))))
        #expect(try await alice.ack().of == "s1")

        // B pushes the state: alice gets it with the room and addresses as she writes them.
        let bobKey = Identity.generate()
        let bobJoin = Self.request(.join, "bob", bobKey, room: "#ops")
        await toNode(SignalingMessage(id: "p1", from: "@node", to: "alice@\(Self.here)", payload: .roomCall(.state(RoomCallStateBody(
            room: "#ops", call: "rc-1", kind: .video, event: .joined, member: "bob", participants: [start, bobJoin], limit: 4,
            addresses: ["alice@\(Self.here)", "bob"])))))
        let state = try await HubRoomCallTests().state(alice)
        #expect(state.room == room && state.member == "bob@\(hostB)" && state.addresses == ["alice", "bob@\(hostB)"])
        // So this node lets alice's pairwise call to bob through, tagged with the call; not carol's.
        #expect(await fixture.hub.roomCallPairRefusal(room: room, roomCall: "rc-1", caller: "alice", callee: "bob@\(hostB)") == nil)
        #expect(await fixture.hub.roomCallPairRefusal(room: room, roomCall: "rc-1", caller: "carol", callee: "alice") != nil)
        #expect(await fixture.hub.roomCallPairRefusal(room: room, roomCall: "rc-2", caller: "alice", callee: "bob@\(hostB)") != nil)

        // B pushes to carol, no member: refused on the link, never reaches her.
        await toNode(SignalingMessage(id: "p2", from: "@node", to: "carol@\(Self.here)", payload: .roomCall(.state(RoomCallStateBody(
            room: "#ops", call: "rc-1", kind: .video, event: .started, member: "bob", participants: [bobJoin], ring: 30, limit: 4,
            addresses: ["bob"])))))
        let refused = try await fromNode { message in if case .error(let body) = message.payload, body.of == "p2" { body } else { nil } }
        #expect(refused.code == .forbidden)
        // A list without addresses, or longer than any call: refused.
        let many = Array(repeating: bobJoin, count: SignalingHub.maxPushedParticipants + 1)
        await toNode(SignalingMessage(id: "p3", from: "@node", to: "alice@\(Self.here)", payload: .roomCall(.state(RoomCallStateBody(
            room: "#ops", call: "rc-1", kind: .video, event: .joined, member: "bob", participants: many, limit: 4,
            addresses: many.map { _ in "bob" })))))
        let tooMany: SignalingError.Code = try await fromNode { message in if case .error(let body) = message.payload, body.of == "p3" { body.code } else { nil } }
        #expect(tooMany == .badField)
        await carol.send(.ping, id: "sync")
        try await carol.expectNext(id: "sync", "no room-call state for carol")
        // Ended: forgotten, and the pairwise check refuses again.
        await toNode(SignalingMessage(id: "p4", from: "@node", to: "alice@\(Self.here)", payload: .roomCall(.state(RoomCallStateBody(
            room: "#ops", call: "rc-1", kind: .video, event: .ended, member: "bob", participants: [], limit: 4, addresses: [])))))
        #expect(try await HubRoomCallTests().state(alice).event == .ended)
        #expect(await fixture.hub.remoteRoomCalls.isEmpty)
    }
}
