import Foundation
import Testing
import TestSupport
@testable import Signaling

/// Issue 15, findings 4, 6, 7 and 9 at the hub: each test plays the attacker with a raw
/// connection and checks the refusal's code, then that legitimate use still works.
@Suite struct HubStoreTrustTests {
    // MARK: - Finding 4: disk fill

    /// The review's attack: 100 free names join one room and each sends chat within the rate
    /// limit. Unbounded, 500 messages of 1 KB to 99 members would store about 55 MB; here the
    /// room stops at its byte bound, the senders get `store-full`, and what was stored is intact.
    @Test func aHundredFreeNamesFloodingARoomLeaveTheStoreBounded() async throws {
        var limits = StoreLimits()
        limits.roomBytes = 1 << 20
        limits.bytes = 2 << 20
        let node = try await HubFixture(limits: limits)
        defer { Task { await node.close() } }
        // A member who is away while the flood happens, and comes back afterwards.
        let carolKey = Identity.generate()
        let carol = try await node.login("carol", carolKey)
        await carol.send(.join(RoomBody(room: "#flood")), id: "j")
        _ = try await carol.ack()
        await node.hub.closed(carol.handle.id)

        var attackers: [TestPeer] = []
        for index in 0..<100 {
            let peer = await node.peer()
            try await peer.login("free\(index)", .generate())
            await peer.send(.join(RoomBody(room: "#flood")), id: "join")
            try await peer.next { $0.payload == .ack(AckBody(of: "join", status: .ok)) ? true : nil }
            attackers.append(peer)
        }
        let text = String(repeating: "x", count: 1000)
        var stored: [String] = []
        var refused = 0
        for round in 0..<5 {
            for (index, peer) in attackers.enumerated() {
                let id = "m\(round)-\(index)"
                await peer.send(.chat(ChatBody(text: text)), to: "#flood", id: id)
                let answer = try await peer.next {
                    switch $0.payload {
                    case .ack(let body) where body.of == id: SignalingError.Code(rawValue: "ok")
                    case .error(let body) where body.of == id: body.code
                    default: nil
                    }
                }
                if answer.rawValue == "ok" { stored.append(id) } else {
                    #expect(answer == .storeFull)
                    refused += 1
                }
            }
        }
        let room = try await node.store.usage("#flood")
        let total = try await node.store.usage()
        #expect(room.bytes <= limits.roomBytes && total.bytes <= limits.bytes)
        #expect(stored.count >= 5 && refused > 400, "stored \(stored.count), refused \(refused)")
        // The file holds the bounded rows plus SQLite's own pages: far from the 55 MB.
        let files = [node.store.path, node.store.path + "-wal"]
        let onDisk = files.compactMap { (try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? NSNumber)?.intValue }.reduce(0, +)
        #expect(onDisk > 0 && onDisk < 12 << 20, "store files \(onDisk) bytes")

        // carol gets every stored message, intact, in order.
        let back = try await node.login("carol", carolKey)
        for id in stored {
            let (message, body) = try await back.next { if case .chat(let body) = $0.payload { ($0, body) } else { nil } }
            #expect(message.id == id && body.text == text && message.to == "#flood")
            await back.send(.ack(AckBody(of: message.id, sender: message.from)), from: "carol")
        }
        // Direct chat was never blocked by the room's bound.
        await back.send(.chat(ChatBody(text: "still here")), to: "free0", id: "direct")
        #expect(try await back.ack().of == "direct")
        await back.send(.ping, id: "sync")
        try await back.next { $0.id == "sync" ? true : nil }
    }

    @Test func aFullRecipientQueueRefusesWithStoreFullAndKeepsWhatItHolds() async throws {
        var limits = StoreLimits()
        limits.recipientMessages = 5
        let node = try await HubFixture(limits: limits)
        defer { Task { await node.close() } }
        let bobKey = Identity.generate()
        let bob = try await node.login("bob", bobKey)
        await node.hub.closed(bob.handle.id)
        let mallory = try await node.login("mallory", .generate())
        for index in 1...5 {
            await mallory.send(.chat(ChatBody(text: "spam \(index)")), to: "bob", id: "s\(index)")
            #expect(try await mallory.ack().of == "s\(index)")
        }
        await mallory.send(.chat(ChatBody(text: "one too many")), to: "bob", id: "s6")
        let error = try await mallory.error()
        #expect(error.code == .storeFull && error.of == "s6")
        // bob reads his queue: the five are there; once acknowledged, there is room again.
        let back = try await node.login("bob", bobKey)
        for index in 1...5 {
            let message = try await back.next()
            #expect(message.id == "s\(index)")
            await back.send(.ack(AckBody(of: message.id, sender: "mallory")), from: "bob")
        }
        await mallory.send(.chat(ChatBody(text: "one too many")), to: "bob", id: "s6")
        #expect(try await mallory.ack() == AckBody(of: "s6", status: .ok))
        try await back.expectNext(id: "s6", "the resend, now stored")
    }

    /// A member whose own queue is full misses room messages (its mailbox is full); the room
    /// and its other members go on. Filling one member's queue cannot silence a room.
    @Test func aRoomSkipsAMemberWhoseQueueIsFull() async throws {
        var limits = StoreLimits()
        limits.recipientMessages = 2
        let node = try await HubFixture(limits: limits)
        defer { Task { await node.close() } }
        let alice = try await node.login("alice", .generate())
        let bob = try await node.login("bob", .generate())
        let carol = try await node.login("carol", .generate())
        for peer in [alice, bob, carol] {
            await peer.send(.join(RoomBody(room: "#ops")), id: "j")
            _ = try await peer.ack()
        }
        await node.hub.closed(carol.handle.id)
        // mallory fills carol's queue with direct chat.
        let mallory = try await node.login("mallory", .generate())
        for index in 0..<2 {
            await mallory.send(.chat(ChatBody(text: "fill")), to: "carol", id: "f\(index)")
            _ = try await mallory.ack()
        }
        await alice.send(.chat(ChatBody(text: "to the room")), to: "#ops", id: "r1")
        #expect(try await alice.ack() == AckBody(of: "r1", status: .ok))
        let delivered = try await bob.next { if case .chat = $0.payload { $0 } else { nil } }
        #expect(delivered.id == "r1")
        #expect(try await node.store.usage("r:carol").messages == 2)
        #expect(try await node.store.usage("#ops").messages == 1)
    }

    @Test func undeliveredMessagesExpire() async throws {
        var limits = StoreLimits()
        limits.expiry = 30 * 86_400
        let node = try await HubFixture(limits: limits)
        defer { Task { await node.close() } }
        let bobKey = Identity.generate()
        let bob = try await node.login("bob", bobKey)
        await node.hub.closed(bob.handle.id)
        let alice = try await node.login("alice", .generate())
        await alice.send(.chat(ChatBody(text: "old news")), to: "bob", id: "old")
        _ = try await alice.ack()
        try await node.store.prune(olderThan: 7 * 86_400, now: Date().addingTimeInterval(29 * 86_400))
        #expect(try await node.store.usage("r:bob").messages == 1)
        try await node.store.prune(olderThan: 7 * 86_400, now: Date().addingTimeInterval(31 * 86_400))
        #expect(try await node.store.usage().messages == 0)
        let back = try await node.login("bob", bobKey)
        await back.send(.ping, id: "sync")
        try await back.expectNext(id: "sync", "the pong, not the expired message")
    }

    /// Two names that chat and acknowledge at the rate limit: the delivered rows lose their
    /// text at once and only the newest `deliveredKept` ids are kept, still deduplicating.
    @Test func deliveredMessagesKeepOnlyTheirIdsAndAreBounded() async throws {
        var limits = StoreLimits()
        limits.deliveredKept = 10
        let node = try await HubFixture(limits: limits)
        defer { Task { await node.close() } }
        let alice = try await node.login("alice", .generate())
        let bob = try await node.login("bob", .generate())
        let text = String(repeating: "y", count: 10_000)
        for index in 0..<30 {
            await alice.send(.chat(ChatBody(text: text)), to: "bob", id: "d\(index)")
            _ = try await alice.ack()
            let message = try await bob.next { if case .chat = $0.payload { $0 } else { nil } }
            await bob.send(.ack(AckBody(of: message.id, sender: "alice")), from: "bob")
        }
        await bob.send(.ping, id: "sync")
        try await bob.next { $0.id == "sync" ? true : nil }
        #expect(try await node.store.usage().messages == 0)
        // Thirty delivered 10 KB messages hold no text any more.
        #expect(try await node.store.storedBytes() == 0)
        try await node.store.prune(olderThan: 7 * 86_400)
        #expect(try await node.store.hasMessage(sender: "alice", id: "d29"))
        #expect(try await !node.store.hasMessage(sender: "alice", id: "d0"))
        // The newest ids still deduplicate.
        await alice.send(.chat(ChatBody(text: text)), to: "bob", id: "d29")
        #expect(try await alice.ack() == AckBody(of: "d29", status: .duplicate))
    }

    @Test func newNamesStopAtTheBindingBound() async throws {
        var limits = StoreLimits()
        limits.names = 3
        let node = try await HubFixture(limits: limits)
        defer { Task { await node.close() } }
        let keys = (0..<3).map { _ in Identity.generate() }
        for (index, key) in keys.enumerated() {
            let peer = await node.peer()
            try await peer.login("user\(index)", key)
        }
        let extra = await node.peer()
        let nonce = try await extra.next { if case .challenge(let body) = $0.payload { body.nonce } else { nil } }
        await extra.send(.login(LoginBody.signed(name: "user3", identity: .generate(), nonce: nonce)))
        #expect(try await extra.error().code == .storeFull)
        // A name bound before still logs in.
        _ = try await node.login("user0", keys[0])
    }

    /// Names are bounded and expire: unused for `nameExpiry`, their room memberships go, then
    /// the name, unless something still waits for it.
    @Test func unusedNamesExpireAndFreeTheirPlace() async throws {
        var limits = StoreLimits()
        limits.names = 3
        limits.nameExpiry = 30 * 86_400
        limits.expiry = 60 * 86_400
        let node = try await HubFixture(limits: limits)
        defer { Task { await node.close() } }
        for name in ["awaited", "member", "idle"] {
            let peer = await node.peer()
            try await peer.login(name, .generate())
            if name == "member" {
                await peer.send(.join(RoomBody(room: "#keep")), id: "j")
                _ = try await peer.ack()
            }
            if name == "idle" {
                await peer.send(.chat(ChatBody(text: "for you")), to: "awaited", id: "w")
            }
            await node.hub.closed(peer.handle.id)
        }
        try await waitUntil("the chat to be stored") { try await node.store.usage("r:awaited").messages == 1 }
        try await node.store.prune(olderThan: 7 * 86_400, now: Date().addingTimeInterval(20 * 86_400))
        #expect(try await node.store.key(of: "idle") != nil)
        #expect(try await node.store.members(of: "#keep") == ["member"])
        try await node.store.prune(olderThan: 7 * 86_400, now: Date().addingTimeInterval(31 * 86_400))
        // idle went; member left #keep (now forgotten) and went; awaited has a message waiting (kept 60 days here).
        #expect(try await node.store.key(of: "idle") == nil)
        #expect(try await node.store.key(of: "member") == nil)
        #expect(try await node.store.room("#keep") == nil)
        #expect(try await node.store.key(of: "awaited") != nil)
        _ = try await node.login("newcomer", .generate())
    }

    // MARK: - Rooms: owner, invite, members

    @Test func inviteRoomsAdmitOnlyInvitedNamesAndMembersAreForMembers() async throws {
        let node = try await HubFixture()
        defer { Task { await node.close() } }
        let alice = try await node.login("alice", .generate())
        let bob = try await node.login("bob", .generate())
        let mallory = try await node.login("mallory", .generate())
        await alice.send(.join(RoomBody(room: "#board", rule: .invite)), id: "create")
        #expect(try await alice.ack() == AckBody(of: "create", status: .ok))
        #expect(try await node.store.room("#board") == SignalingStore.Room(owner: "alice", rule: .invite))

        // mallory: not invited, cannot invite herself, cannot list the members.
        await mallory.send(.join(RoomBody(room: "#board")), id: "j")
        let refused = try await mallory.error()
        #expect(refused.code == .forbidden && refused.of == "j")
        await mallory.send(.invite(InviteBody(room: "#board", name: "mallory")), id: "i")
        let notOwner = try await mallory.error()
        #expect(notOwner.code == .forbidden && notOwner.of == "i")
        await mallory.send(.members(MembersBody(room: "#board")), id: "q")
        let hidden = try await mallory.error()
        #expect(hidden.code == .notMember && hidden.of == "q")
        await mallory.send(.chat(ChatBody(text: "hi")), to: "#board", id: "c")
        #expect(try await mallory.error().code == .notMember)

        // The owner invites bob, who joins and lists the members.
        await alice.send(.invite(InviteBody(room: "#board", name: "bob")), id: "inv")
        #expect(try await alice.ack() == AckBody(of: "inv", status: .ok))
        await bob.send(.join(RoomBody(room: "#board")), id: "jb")
        #expect(try await bob.ack() == AckBody(of: "jb", status: .ok))
        await bob.send(.members(MembersBody(room: "#board")), id: "qb")
        let members = try await bob.next { if case .members(let body) = $0.payload { body } else { nil } }
        #expect(members.of == "qb" && members.members?.map(\.name) == ["alice", "bob"])
    }

    @Test func openRoomsStopAtTheirMemberBound() async throws {
        var limits = StoreLimits()
        limits.roomMembers = 3
        let node = try await HubFixture(limits: limits)
        defer { Task { await node.close() } }
        for index in 0..<3 {
            let peer = await node.peer()
            try await peer.login("m\(index)", .generate())
            await peer.send(.join(RoomBody(room: "#small")), id: "j")
            #expect(try await peer.ack().status == .ok)
        }
        let late = try await node.login("late", .generate())
        await late.send(.join(RoomBody(room: "#small")), id: "j")
        let error = try await late.error()
        #expect(error.code == .storeFull && error.of == "j")
        // Another room is unaffected.
        await late.send(.join(RoomBody(room: "#other")), id: "k")
        #expect(try await late.ack().status == .ok)
    }

    // MARK: - Finding 6: login bound to the node

    /// A node M that relays node N's challenge to its own client gets a login signed for M:
    /// N refuses it, whether M sends it as it is or claims N's address in it.
    @Test func aLoginSignedForAnotherNodeIsRefused() async throws {
        let node = try await HubFixture()
        defer { Task { await node.close() } }
        let alice = Identity.generate()
        let relay = await node.peer()
        let nonce = try await relay.next { if case .challenge(let body) = $0.payload { body.nonce } else { nil } }
        // alice dialled the relay, so her client signs for the relay's address.
        let forRelay = LoginBody.signed(name: "alice", identity: alice, nonce: nonce, node: "evil.example:8080")
        await relay.send(.login(forRelay))
        #expect(try await relay.error().code == .badSignature)
        let next = try await relay.next { if case .challenge(let body) = $0.payload { body.nonce } else { nil } }
        var claimed = LoginBody.signed(name: "alice", identity: alice, nonce: next, node: "evil.example:8080")
        claimed.node = HubFixture.authority
        await relay.send(.login(claimed))
        #expect(try await relay.error().code == .badSignature)
        #expect(await node.hub.onlineNames.isEmpty)
        // alice herself, dialling the node, logs in.
        _ = try await node.login("alice", alice)
    }

    // MARK: - Finding 7: subscriptions

    @Test func churningUniqueSubscriptionsLeavesNoEmptySets() async throws {
        let node = try await HubFixture(rate: 1_000_000, burst: 1_000_000)
        defer { Task { await node.close() } }
        let churner = try await node.login("churner", .generate())
        for round in 0..<5 {
            let names = (0..<1000).map { "n\(round)-\($0)" }
            await churner.send(.subscribe(NamesBody(names: names)), id: "s\(round)")
            await churner.send(.unsubscribe(NamesBody(names: names)), id: "u\(round)")
            try await churner.next { $0.payload == .ack(AckBody(of: "u\(round)", status: .ok)) ? true : nil }
        }
        #expect(await node.hub.watchers.isEmpty)
        // Subscriptions held when the connection drops go too.
        await churner.send(.subscribe(NamesBody(names: (0..<1000).map { "held\($0)" })), id: "held")
        try await churner.next { $0.payload == .ack(AckBody(of: "held", status: .ok)) ? true : nil }
        #expect(await node.hub.watchers.count == 1000)
        await node.hub.closed(churner.handle.id)
        #expect(await node.hub.watchers.isEmpty)
        // The cap per connection still holds, and subscribing still works.
        let watcher = try await node.login("watcher", .generate())
        await watcher.send(.subscribe(NamesBody(names: (0...1000).map { "x\($0)" })), id: "over")
        let error = try await watcher.error()
        #expect(error.code == .badField && error.of == "over")
        await watcher.send(.subscribe(NamesBody(names: ["churner"])), id: "ok")
        #expect(try await watcher.ack().of == "ok")
    }

    /// A link subscribes on behalf of its node's peers: bounded too, and emptied by unsubscribe.
    @Test func aLinkCannotHoldUnboundedSubscriptions() async throws {
        let node = try await HubFixture(node: "192.0.2.1:8080", identity: .generate()) { $0.maxLinkSubscriptions = 50 }
        defer { Task { await node.close() } }
        let network = NodeRegistry()
        await node.hub.setProver(network.prover)
        let link = try await HubMeshTests().linked(node, as: "192.0.2.10:8080", .generate(), in: network)
        await link.send(.subscribe(NamesBody(names: (0..<51).map { "n\($0)" })), from: "@node", id: "flood")
        let error = try await link.error()
        #expect(error.code == .badField && error.of == "flood")
        #expect(await node.hub.watchers.isEmpty)
        await link.send(.subscribe(NamesBody(names: (0..<50).map { "n\($0)" })), from: "@node", id: "fits")
        try await waitUntil("the link's subscriptions") { await node.hub.watchers.count == 50 }
        await link.send(.unsubscribe(NamesBody(names: (0..<50).map { "n\($0)" })), from: "@node", id: "gone")
        try await waitUntil("the link's subscriptions to go") { await node.hub.watchers.isEmpty }
    }

    /// A local peer that stops watching a remote name tells the remote node, so the link's
    /// table there shrinks with it.
    @Test func unwatchingARemoteNameUnsubscribesOverTheLink() async throws {
        let node = try await HubFixture(node: "192.0.2.1:8080", identity: .generate())
        defer { Task { await node.close() } }
        let network = NodeRegistry()
        await node.hub.setProver(network.prover)
        let link = try await HubMeshTests().linked(node, as: "192.0.2.10:8080", .generate(), in: network)
        let alice = try await node.login("alice", .generate())
        await alice.send(.subscribe(NamesBody(names: ["bob@192.0.2.10:8080"])), id: "s")
        _ = try await alice.ack()
        let subscribed = try await link.next { if case .subscribe(let body) = $0.payload { body } else { nil } }
        #expect(subscribed.names == ["bob"])
        await alice.send(.unsubscribe(NamesBody(names: ["bob@192.0.2.10:8080"])), id: "u")
        let unsubscribed = try await link.next { if case .unsubscribe(let body) = $0.payload { body } else { nil } }
        #expect(unsubscribed.names == ["bob"])
        #expect(await node.hub.watchers.isEmpty)
    }

    // MARK: - Finding 9: the store's files

    @Test func theStoreIsPrivateToItsUser() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshnode-perm-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // A directory made with a permissive umask, as `mkdir` would.
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        let store = try await SignalingStore.open(directory: directory, logger: .init(label: "test"))
        _ = try await store.bind(name: "alice", key: Identity.generate().publicKeyBase64)
        func mode(_ path: String) throws -> Int {
            try #require((try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue) & 0o777
        }
        #expect(try mode(directory) == 0o700)
        for file in [store.path, store.path + "-wal", store.path + "-shm"] where FileManager.default.fileExists(atPath: file) {
            #expect(try mode(file) == 0o600, "\(file)")
        }
        #expect(FileManager.default.fileExists(atPath: store.path + "-wal"))
        await store.close()
    }
}

/// The forms a login and an Origin check compare (docs/protocol.md "Login", "Transport").
@Suite struct OriginAndAuthorityTests {
    @Test func authoritiesAlwaysCarryTheirPort() {
        #expect(LoginBody.authority(of: "ws://127.0.0.1:8080/ws") == "127.0.0.1:8080")
        #expect(LoginBody.authority(of: "wss://Meet.Example.org/ws") == "meet.example.org:443")
        #expect(LoginBody.authority(of: "ws://[::1]:9000/ws") == "[::1]:9000")
        #expect(LoginBody.authority(of: "ws://localhost/ws") == "localhost:80")
        #expect(LoginBody.authority("Example.org:8443") == "example.org:8443")
        #expect(LoginBody.authority("example.org") == nil)
    }

    /// RFC 6455 §10.2: a browser's page from another site is refused; the page's own origin,
    /// an allowed one and clients without Origin pass.
    @Test func onlyThePagesOwnOriginOrAnAllowedOneOpensTheSocket() {
        let policy = OriginPolicy(allowed: ["https://app.example"])
        #expect(policy.refusal(origin: nil, host: "127.0.0.1:8080") == nil)
        #expect(policy.refusal(origin: "http://127.0.0.1:8080", host: "127.0.0.1:8080") == nil)
        #expect(policy.refusal(origin: "https://meet.example.org", host: "meet.example.org") == nil)
        #expect(policy.refusal(origin: "http://localhost:8080", host: "LOCALHOST:8080") == nil)
        #expect(policy.refusal(origin: "https://app.example", host: "127.0.0.1:8080") == nil)
        #expect(policy.refusal(origin: "https://evil.example", host: "127.0.0.1:8080") != nil)
        #expect(policy.refusal(origin: "http://127.0.0.1:9999", host: "127.0.0.1:8080") != nil)
        #expect(policy.refusal(origin: "null", host: "127.0.0.1:8080") != nil)
        // What Hummingbird's client sends (not a browser), alone and with a browser's origin.
        #expect(policy.refusal(origin: "ws://127.0.0.1", host: "127.0.0.1:8080") == nil)
        #expect(policy.refusal(origin: "ws://127.0.0.1, https://evil.example", host: "127.0.0.1:8080") != nil)
        #expect(OriginPolicy(allowed: ["*"]).refusal(origin: "https://evil.example", host: "127.0.0.1:8080") == nil)
    }
}

extension OriginAndAuthorityTests {
    /// docs/protocol.md "Login": the sample login verifies (RFC 8032 test key 1).
    @Test func theDocumentedLoginSampleVerifies() {
        let text = LoginBody.signedText(nonce: "bWVzaG5vZGUgc2FtcGxlIG5vbmNlLCAzMiBieXRlcyE=", name: "alice", node: "127.0.0.1:8080")
        #expect(Identity.verify(signatureBase64: "Bh9dZHurZ7jhp/h994zHMlmVWn/2ICAJtUTUtkrMSmFpi7L2mdBwhSlVDS64WHrdZYdS7dlaSrPmNMy4EkoECw==",
                                text: text, publicKeyBase64: "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="))
    }
}
