import Foundation
import Testing
import TestSupport
@testable import Signaling

/// Issue 14 item 4 at the hub: a room's history (members only, bounded by count and age, read
/// in pages) and rooms across nodes, with the test playing the other node over a raw link.
@Suite struct HubRoomHistoryTests {
    static let here = "192.0.2.1:8080"
    static let nodeA = "192.0.2.10:8080"

    /// A page of history as `peer` gets it for request `id`.
    func page(_ peer: TestPeer, _ room: String, before: Int? = nil, limit: Int? = nil, id: String) async throws -> HistoryBody {
        await peer.send(.history(HistoryBody(room: room, before: before, limit: limit)), id: id)
        return try await peer.next { message in
            switch message.payload {
            case .history(let body) where body.of == id: body
            case .error(let body) where body.of == id: HistoryBody(room: "error:\(body.code.rawValue)")
            default: nil
            }
        }
    }

    @Test func onlyMembersReadOrWriteARoom() async throws {
        let node = try await HubFixture()
        defer { Task { await node.close() } }
        let peers = try await node.loggedIn("alice", "mallory")
        let (alice, mallory) = (peers[0].peer, peers[1].peer)
        await alice.send(.join(RoomBody(room: "#ops")), id: "j")
        _ = try await alice.ack()
        await alice.send(.chat(ChatBody(text: "secret plans")), to: "#ops", id: "c1")
        #expect(try await alice.ack().of == "c1")
        #expect(try await page(mallory, "#ops", id: "h1").room == "error:not-member")
        await mallory.send(.chat(ChatBody(text: "let me in")), to: "#ops", id: "c2")
        #expect(try await mallory.error() == SignalingError(.notMember, "join #ops before writing to it", of: "c2"))
        // After joining, the whole history is hers to read (as in any group chat).
        await mallory.send(.join(RoomBody(room: "#ops")), id: "j")
        _ = try await mallory.ack()
        let history = try await page(mallory, "#ops", id: "h2")
        #expect(history.messages?.map(\.text) == ["secret plans"] && history.messages?.first?.from == "alice" && history.more == false)
        // A member who leaves stops reading it.
        await mallory.send(.leave(RoomBody(room: "#ops")), id: "l")
        _ = try await mallory.ack()
        #expect(try await page(mallory, "#ops", id: "h3").room == "error:not-member")
    }

    @Test func historyIsBoundedByCountAndAgeAndReadInPages() async throws {
        var limits = StoreLimits()
        limits.roomHistory = 5
        let node = try await HubFixture(limits: limits)
        defer { Task { await node.close() } }
        let peers = try await node.loggedIn("alice", "bob")
        let (alice, bob) = (peers[0].peer, peers[1].peer)
        for peer in [alice, bob] {
            await peer.send(.join(RoomBody(room: "#ops")), id: "j")
            _ = try await peer.ack()
        }
        var seqs: [Int] = []
        for index in 1...8 {
            await alice.send(.chat(ChatBody(text: "m\(index)")), to: "#ops", id: "m\(index)")
            #expect(try await alice.ack() == AckBody(of: "m\(index)", status: .ok))
            // Delivered live with its place in the history.
            let live = try await bob.next { if case .chat(let body) = $0.payload { body } else { nil } }
            #expect(live.text == "m\(index)")
            seqs.append(try #require(live.seq))
        }
        #expect(seqs == seqs.sorted() && Set(seqs).count == 8)
        // A resend is a duplicate and adds nothing.
        await alice.send(.chat(ChatBody(text: "m8")), to: "#ops", id: "m8")
        #expect(try await alice.ack() == AckBody(of: "m8", status: .duplicate))
        #expect(try await node.store.historyCount(of: "#ops") == 5)

        // Pages of 2, newest first: m7 m8, then m5 m6, then m4 alone (m1–m3 went beyond the bound).
        let first = try await page(bob, "#ops", limit: 2, id: "p1")
        #expect(first.messages?.map(\.text) == ["m7", "m8"] && first.more == true)
        let second = try await page(bob, "#ops", before: first.messages?.first?.seq, limit: 2, id: "p2")
        #expect(second.messages?.map(\.text) == ["m5", "m6"] && second.more == true)
        let third = try await page(bob, "#ops", before: second.messages?.first?.seq, limit: 2, id: "p3")
        #expect(third.messages?.map(\.text) == ["m4"] && third.more == false)
        // The default page and the cap.
        #expect(try await page(bob, "#ops", id: "p4").messages?.count == 5)
        #expect(try await page(bob, "#ops", limit: HistoryBody.maxLimit + 1, id: "p5").room == "error:bad-field")
        #expect(try await page(bob, "#ops", limit: 0, id: "p6").room == "error:bad-field")
        #expect(try await page(bob, "#ops", before: 0, id: "p7").room == "error:bad-field")

        // Age: a prune 31 days on forgets all of it (default 30 days).
        try await node.store.prune(olderThan: 7 * 86_400, now: Date().addingTimeInterval(31 * 86_400))
        #expect(try await node.store.historyCount(of: "#ops") == 0)
        #expect(try await page(bob, "#ops", id: "p8").messages == [])
    }

    /// A member who was offline gets the messages from its queue at login, as before, and can
    /// read them (and older ones) in the history; the last member's leaving forgets the history.
    @Test func anAbsentMemberCatchesUpAndAnEmptyRoomForgetsItsHistory() async throws {
        let node = try await HubFixture()
        defer { Task { await node.close() } }
        let carolKey = Identity.generate()
        let carol = try await node.login("carol", carolKey)
        let alice = try await node.login("alice", .generate())
        for peer in [alice, carol] {
            await peer.send(.join(RoomBody(room: "#ops")), id: "j")
            _ = try await peer.ack()
        }
        await node.hub.closed(carol.handle.id)
        await alice.send(.chat(ChatBody(text: "while you were out")), to: "#ops", id: "w1")
        _ = try await alice.ack()
        let back = try await node.login("carol", carolKey)
        let queued = try await back.next { message in if case .chat(let body) = message.payload { (message, body) } else { nil } }
        #expect(queued.0.to == "#ops" && queued.1.text == "while you were out" && queued.1.seq != nil)
        let history = try await page(back, "#ops", id: "h")
        #expect(history.messages?.map(\.seq) == [queued.1.seq!])
        for peer in [alice, back] {
            await peer.send(.leave(RoomBody(room: "#ops")), id: "l")
            _ = try await peer.ack()
        }
        #expect(try await node.store.historyCount(of: "#ops") == 0)
    }

    // MARK: - Across nodes, the host's side: the test is node A

    func linkedHost(limits: StoreLimits = StoreLimits()) async throws -> (HubFixture, TestPeer, Identity) {
        let network = NodeRegistry()
        let a = Identity.generate()
        network.run(a, at: Self.nodeA)
        let fixture = try await HubFixture(node: Self.here, identity: .generate(), limits: limits)
        await fixture.hub.setProver(network.prover)
        let link = await fixture.peer()
        #expect(try await link.linked(as: Self.nodeA, a, to: Self.here).proven == true)
        return (fixture, link, a)
    }

    /// Room chat as node A relays it for its peer `from`: signed with A's key.
    func signedChat(_ text: String, room: String, from: String, id: String, by node: Identity) -> ChatBody {
        ChatBody(text: text, sig: node.sign(text: ChatBody.roomAttestation(room: "\(room)@\(Self.here)", from: from, id: id, text: text)))
    }

    /// What a linked node can make this node keep is bounded: its peers join existing rooms only
    /// and hold at most `nodeMemberships` memberships in all; their chat goes into the room's
    /// bounded history. The test plays node A, whose peers try to take more.
    @Test func aLinkedNodeCannotExceedItsMembershipsOrCreateRooms() async throws {
        var limits = StoreLimits()
        limits.nodeMemberships = 3
        let (host, link, a) = try await linkedHost(limits: limits)
        defer { Task { await host.close() } }
        let bob = try await host.login("bob", .generate())
        for index in 0..<5 {
            await bob.send(.join(RoomBody(room: "#r\(index)")), id: "j\(index)")
            _ = try await bob.ack()
        }
        func answer(_ id: String) async throws -> String { try await link.answer(to: id) }
        // A room nobody here made: refused, nothing created.
        await link.send(.join(RoomBody(room: "#made-up")), from: "alice@\(Self.nodeA)", id: "x")
        #expect(try await answer("x") == "forbidden")
        #expect(try await host.store.room("#made-up") == nil)
        // Three memberships, from three different peers of A; the fourth is refused.
        var outcomes: [String] = []
        for index in 0..<4 {
            await link.send(.join(RoomBody(room: "#r\(index)")), from: "p\(index)@\(Self.nodeA)", id: "a\(index)")
            outcomes.append(try await answer("a\(index)"))
        }
        #expect(outcomes == ["ok", "ok", "ok", "store-full"])
        #expect(try await host.store.memberships(ofNode: Self.nodeA) == 3)
        // A peer of another node is not A's to speak for.
        await link.send(.join(RoomBody(room: "#r4")), from: "eve@198.51.100.7:8080", id: "f")
        #expect(try await answer("f") == "forbidden")
        // Once one leaves, another may join.
        await link.send(.leave(RoomBody(room: "#r0")), from: "p0@\(Self.nodeA)", id: "l0")
        #expect(try await answer("l0") == "ok")
        await link.send(.join(RoomBody(room: "#r3")), from: "p3@\(Self.nodeA)", id: "a3b")
        #expect(try await answer("a3b") == "ok")

        // A member at A writes: bob gets it live from p1@A, it is in the history, and A's answer
        // is the host's ack; bob's reply reaches A for p1 with the host's seq and room.
        // Unsigned, or signed for other words: refused, nothing stored.
        await link.send(.chat(ChatBody(text: "hello from A")), to: "#r1", from: "p1@\(Self.nodeA)", id: "c0")
        #expect(try await answer("c0") == "bad-signature")
        var forged = signedChat("hello from A", room: "#r1", from: "p1@\(Self.nodeA)", id: "c0", by: a)
        forged.text = "send me your password"
        await link.send(.chat(forged), to: "#r1", from: "p1@\(Self.nodeA)", id: "c0")
        #expect(try await answer("c0") == "bad-signature")
        #expect(try await host.store.historyCount(of: "#r1") == 0)
        await link.send(.chat(signedChat("hello from A", room: "#r1", from: "p1@\(Self.nodeA)", id: "c1", by: a)), to: "#r1", from: "p1@\(Self.nodeA)", id: "c1")
        #expect(try await answer("c1") == "ok")
        let got = try await bob.next { message in if case .chat(let body) = message.payload { (message, body) } else { nil } }
        #expect(got.0.from == "p1@\(Self.nodeA)" && got.0.to == "#r1" && got.1.text == "hello from A")
        await bob.send(.chat(ChatBody(text: "hello A")), to: "#r1", id: "c2")
        _ = try await bob.ack()
        let pushed = try await link.next { message in if case .chat(let body) = message.payload { (message, body) } else { nil } }
        #expect(pushed.0.from == "bob@\(Self.here)" && pushed.0.to == "p1@\(Self.nodeA)" && pushed.1.room == "#r1" && pushed.1.seq != nil)
        // bob's client sees no node signature in the history; A's node gets p1's, to check it.
        let local = try await page(bob, "#r1", id: "hb")
        #expect(local.messages?.map(\.sig) == [nil, nil])
        // Not a member: refused. History for A's member names this node's peers qualified.
        await link.send(.chat(signedChat("spam", room: "#r4", from: "p1@\(Self.nodeA)", id: "c3", by: a)), to: "#r4", from: "p1@\(Self.nodeA)", id: "c3")
        #expect(try await answer("c3") == "not-member")
        await link.send(.history(HistoryBody(room: "#r1")), from: "p1@\(Self.nodeA)", id: "h")
        let history = try await link.next { if case .history(let body) = $0.payload, body.of == "h" { body } else { nil } }
        #expect(history.messages?.map(\.from) == ["p1@\(Self.nodeA)", "bob@\(Self.here)"])
        #expect(history.messages?.first?.sig != nil && history.messages?.last?.sig == nil)

        // A node that has not linked for a year loses its peers' memberships (they have no name
        // binding here of their own to expire with).
        try await host.store.prune(olderThan: 7 * 86_400, now: Date().addingTimeInterval(366 * 86_400))
        #expect(try await host.store.memberships(ofNode: Self.nodeA) == 0)
    }

    // MARK: - Across nodes, the member's side: the test is the host B

    /// alice at this node joins `#ops@B`: her node relays to B, takes B's answers back to her,
    /// and hands on what B pushes for her only; B cannot push room chat to a name that is not a
    /// member as far as this node knows, and nothing is stored for it here.
    @Test func aMembersNodeRelaysToTheHostAndTakesPushesForMembersOnly() async throws {
        let hostB = "198.51.100.20:8080"
        let here = Identity.generate()
        let fixture = try await HubFixture(node: Self.here, identity: here)
        defer { Task { await fixture.close() } }
        let link = await TestLink(fixture.hub, node: hostB)
        func fromNode<T>(_ match: (SignalingMessage) -> T?) async throws -> T { try await link.next(match) }
        func toNode(_ message: SignalingMessage) async { await link.send(message) }
        let peers = try await fixture.loggedIn("alice", "carol")
        let (alice, carol) = (peers[0].peer, peers[1].peer)

        await alice.send(.join(RoomBody(room: "#ops@\(hostB)")), id: "j1")
        let relayed = try await fromNode { message in if case .join(let body) = message.payload { (message, body) } else { nil } }
        #expect(relayed.0.from == "alice@\(Self.here)" && relayed.0.id == "j1" && relayed.1.room == "#ops")
        await toNode(SignalingMessage(id: "n1", from: "@node", to: "alice@\(Self.here)", payload: .ack(AckBody(of: "j1", status: .ok))))
        #expect(try await alice.ack() == AckBody(of: "j1", status: .ok))
        #expect(try await fixture.store.remoteRooms(of: "alice") == ["#ops@\(hostB)"])

        // Pushed chat: to alice with the room as she names it; the sender as this node names it.
        await toNode(SignalingMessage(id: "c1", from: "bob@\(hostB)", to: "alice@\(Self.here)",
                                      payload: .chat(ChatBody(text: "hi alice", sent: 1, seq: 7, room: "#ops"))))
        let chat = try await alice.next { message in if case .chat(let body) = message.payload { (message, body) } else { nil } }
        #expect(chat.0.from == "bob@\(hostB)" && chat.0.to == "#ops@\(hostB)" && chat.1.seq == 7 && chat.1.room == nil)
        // B cannot make carol a member by telling her node she joined.
        await toNode(SignalingMessage(id: "e1", from: "@node", to: "carol@\(Self.here)",
                                      payload: .room(RoomEventBody(room: "#ops", member: "carol@\(Self.here)", event: .joined))))
        let notJoined = try await fromNode { message in if case .error(let body) = message.payload, body.of == "e1" { body } else { nil } }
        #expect(notJoined.code == .forbidden)
        #expect(try await fixture.store.remoteRooms(of: "carol") == [])
        // carol is in no room of B: B's push for her is refused on the link and never reaches her.
        await toNode(SignalingMessage(id: "c2", from: "bob@\(hostB)", to: "carol@\(Self.here)",
                                      payload: .chat(ChatBody(text: "buy now", sent: 1, seq: 8, room: "#ops"))))
        let refusal = try await fromNode { message in if case .error(let body) = message.payload { body } else { nil } }
        #expect(refusal.code == .forbidden && refusal.of == "c2")
        // B claims alice said something she did not (no signature of this node): refused.
        await toNode(SignalingMessage(id: "c3", from: "alice@\(Self.here)", to: "alice@\(Self.here)",
                                      payload: .chat(ChatBody(text: "I quit", sent: 1, seq: 9, room: "#ops"))))
        let forged = try await fromNode { message in if case .error(let body) = message.payload, body.of == "c3" { body } else { nil } }
        #expect(forged.code == .badSignature)
        await carol.send(.ping, id: "sync")
        try await carol.expectNext(id: "sync", "no chat for carol before her pong")
        await alice.send(.ping, id: "sync")
        try await alice.expectNext(id: "sync", "no forged chat for alice before her pong")
        #expect(try await fixture.store.usage().messages == 0)

        // History through the relay, and an error of B's with B named.
        await alice.send(.history(HistoryBody(room: "#ops@\(hostB)", limit: 10)), id: "h1")
        let asked = try await fromNode { message in if case .history(let body) = message.payload { (message, body) } else { nil } }
        #expect(asked.1.room == "#ops" && asked.1.limit == 10)
        // alice's own message comes back with this node's signature; one B made up does not.
        let sig = here.sign(text: ChatBody.roomAttestation(room: "#ops@\(hostB)", from: "alice@\(Self.here)", id: "a1", text: "hi bob"))
        await toNode(SignalingMessage(id: "n2", from: "@node", to: "alice@\(Self.here)", payload: .history(HistoryBody(
            room: "#ops", messages: [HistoryEntry(seq: 7, from: "bob@\(hostB)", id: "c1", text: "hi alice", sent: 1),
                                     HistoryEntry(seq: 9, from: "alice@\(Self.here)", id: "a1", text: "hi bob", sent: 2, sig: sig),
                                     HistoryEntry(seq: 10, from: "alice@\(Self.here)", id: "a2", text: "I quit", sent: 3)], more: false, of: "h1"))))
        let history = try await alice.next { if case .history(let body) = $0.payload { body } else { nil } }
        #expect(history.room == "#ops@\(hostB)" && history.messages?.map(\.from) == ["bob@\(hostB)", "alice"] && history.of == "h1")
        #expect(history.messages?.map(\.text) == ["hi alice", "hi bob"] && history.messages?.allSatisfy { $0.sig == nil } == true)
        await alice.send(.chat(ChatBody(text: "x")), to: "#ops@\(hostB)", id: "c9")
        let relayedChat = try await fromNode { message in if message.id == "c9", case .chat(let body) = message.payload { body } else { nil } }
        // Relayed with this node's signature of the room at B, alice's address, the id and the text.
        #expect(Identity.verify(signatureBase64: relayedChat.sig ?? "", text: ChatBody.roomAttestation(room: "#ops@\(hostB)", from: "alice@\(Self.here)", id: "c9", text: "x"),
                                publicKeyBase64: here.publicKeyBase64))
        await toNode(SignalingMessage(id: "n3", from: "@node", to: "alice@\(Self.here)",
                                      payload: .error(ErrorBody(code: .storeFull, reason: "#ops is full", of: "c9"))))
        let error = try await alice.error()
        #expect(error.code == .storeFull && error.of == "c9" && error.reason.contains(hostB))

        // Leaving: relayed, and the membership goes with B's ack.
        await alice.send(.leave(RoomBody(room: "#ops@\(hostB)")), id: "l1")
        _ = try await fromNode { message in message.id == "l1" ? true : nil }
        await toNode(SignalingMessage(id: "n4", from: "@node", to: "alice@\(Self.here)", payload: .ack(AckBody(of: "l1", status: .ok))))
        #expect(try await alice.ack().of == "l1")
        #expect(try await fixture.store.remoteRooms(of: "alice") == [])
        // Without a link to a room's host, a request is refused at once.
        await alice.send(.join(RoomBody(room: "#ops@203.0.113.5:8080")), id: "j2")
        #expect(try await alice.error().code == .unavailable)
    }
}
