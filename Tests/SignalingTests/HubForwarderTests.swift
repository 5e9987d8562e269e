import Foundation
import Testing
import TestSupport
@testable import Signaling

/// Issue 16, a forwarder on another node and its failover, at the room's node (docs/protocol.md
/// "Room calls", *Forwarded mode* item 7). The test plays the forwarding nodes' sessions (one
/// answers the node's pings, one goes silent) and an untrusted node posing as a forwarder.
@Suite struct HubForwarderTests {
    let nodeKey = Identity.generate()
    let bKey = Identity.generate()
    let cKey = Identity.generate()
    var bName: String { ForwarderAssignment.remoteName(forKey: bKey.publicKeyBase64)! }
    var cName: String { ForwarderAssignment.remoteName(forKey: cKey.publicKeyBase64)! }

    func fixture(clock: ManualClock? = nil) async throws -> HubFixture {
        try await HubFixture(heartbeat: .seconds(600), identity: nodeKey, clock: clock) { [bKey, cKey] in
            $0.forwarderKeys = [bKey.publicKeyBase64, cKey.publicKeyBase64]
        }
    }

    /// What the node answers a login of `name` with `key`: "ok" or the error code.
    func loginAnswer(_ node: HubFixture, _ name: String, _ key: Identity) async throws -> String {
        let peer = await node.peer()
        let nonce = try await peer.next { if case .challenge(let body) = $0.payload { body.nonce } else { nil } }
        await peer.send(.login(LoginBody.signed(name: name, identity: key, nonce: nonce)))
        switch try await peer.next().payload {
        case .welcome: return "ok"
        case .error(let body): return body.code.rawValue
        case let other: return "\(other)"
        }
    }

    @Test func onlyTrustedForwardingNodesGetAForwarderSession() async throws {
        let node = try await fixture()
        defer { Task { await node.close() } }
        let mallory = Identity.generate()
        let malloryName = try #require(ForwarderAssignment.remoteName(forKey: mallory.publicKeyBase64))
        #expect(malloryName.count <= 32 && Address.isValidName(malloryName))
        // A fresh key under its own forwarder name: not a node this node trusts.
        #expect(try await loginAnswer(node, malloryName, mallory) == "forbidden")
        // A trusted node's forwarder name with another key.
        #expect(try await loginAnswer(node, bName, mallory) == "name-taken")
        // The name of another key, made up.
        #expect(try await loginAnswer(node, "forwarder.0000000000000000", bKey) == "name-taken")
        #expect(try await loginAnswer(node, bName, bKey) == "ok")
        #expect(await node.hub.forwarderSessions.map(\.name) == [bName])
        // A trusted key in the mesh directory (proven, relay) would do too; an unlisted one not.
        #expect(await node.hub.isTrustedForwarder(mallory.publicKeyBase64) == false)
    }

    /// Five members: the fifth join moves the call to a forwarder session, by the node's
    /// signed assignment; that forwarder stops answering pings and is replaced within 3 s by
    /// the other, which every member hears as `current` with a new assignment.
    @Test func aSilentForwarderIsReplacedAndTheCallMovesWithANewAssignment() async throws {
        let clock = ManualClock()
        let node = try await fixture(clock: clock)
        defer { Task { await node.close() } }
        let b = try await node.login(bName, bKey)
        let c = try await node.login(cName, cKey)
        let peers = try await node.loggedIn("alice", "bob", "carol", "dave", "erin")
        for (peer, _) in peers {
            await peer.send(.join(RoomBody(room: "#ops")), id: "j")
            _ = try await peer.next { message -> Bool? in
                if case .ack(let body) = message.payload, body.of == "j" { true } else { nil }
            }
        }
        let names = ["alice", "bob", "carol", "dave", "erin"]
        for (index, (peer, key)) in peers.enumerated() {
            let body = HubRoomCallTests.request(index == 0 ? .start : .join, names[index], key)
            await peer.send(.roomCall(.request(body)), to: "#ops", id: "r\(index)")
        }
        let alice = peers[0].peer
        let forwarded = try await alice.next { message -> RoomCallStateBody? in
            if case .roomCall(.state(let body)) = message.payload, body.forwarder != nil { body } else { nil }
        }
        let first = try ForwarderSigning.verify(#require(forwarded.forwarder), nodeKey: nodeKey.publicKeyBase64, room: "#ops",
                                                call: "rc-1", now: Date().timeIntervalSince1970)
        // Neither measured yet: by name, the first.
        let (chosen, other, otherKey) = bName < cName ? (b, c, cKey) : (c, b, bKey)
        let chosenName = min(bName, cName), otherName = max(bName, cName)
        #expect(first.forwarder == chosenName)
        #expect(first.key == (chosenName == bName ? bKey : cKey).publicKeyBase64)

        // The other answers every ping; the chosen one is silent from now on.
        let answering = Task {
            while !Task.isCancelled {
                guard let id = try? await other.next(timeout: .seconds(30), { message -> String? in
                    if case .ping = message.payload { message.id } else { nil }
                }) else { return }
                await other.send(.pong, id: id)
            }
        }
        defer { answering.cancel() }
        for _ in 0..<8 {
            clock.advance(by: .milliseconds(500))
            await node.hub.forwarderTick(now: clock.now)
            if await node.hub.forwarderSessions.count == 1 { break }
            // Let the pong of this round arrive before the clock moves on.
            try await waitUntil("the other forwarder answered", limit: TestDeadline.event) {
                await node.hub.forwarders.entries[otherName]?.pending == nil
            }
        }
        #expect(await node.hub.forwarderSessions.map(\.name) == [otherName])
        #expect(await chosen.isClosed)
        let moved = try await alice.next { message -> RoomCallStateBody? in
            if case .roomCall(.state(let body)) = message.payload, body.event == .current { body } else { nil }
        }
        #expect(moved.participants.count == 5)
        let second = try ForwarderSigning.verify(#require(moved.forwarder), nodeKey: nodeKey.publicKeyBase64, room: "#ops",
                                                 call: "rc-1", now: Date().timeIntervalSince1970)
        #expect(second.forwarder == otherName && second.key == otherKey.publicKeyBase64)
        // It has a round trip now (the answered pings).
        #expect(await node.hub.forwarderSessions.first?.rtt != nil)
        // Participants' tagged calls go to the new forwarder only.
        #expect(await node.hub.roomCallPairRefusal(room: "#ops", roomCall: "rc-1", caller: "alice", callee: otherName) == nil)
        #expect(await node.hub.roomCallPairRefusal(room: "#ops", roomCall: "rc-1", caller: "alice", callee: chosenName) != nil)
        #expect(await node.hub.roomCallPairRefusal(room: "#ops", roomCall: "rc-1", caller: "mallory", callee: otherName) != nil)
    }
}
