import Foundation
import MeshCore
import Testing
import TestSupport
@testable import Signaling

/// Issue 15, finding 2 ("Unproven node links"), played at the hub: an address is bound to a
/// key only when the node at that address proves the key (dial-back, here through
/// `NodeRegistry` instead of sockets; the WebSocket dial-back is NodeLinkTests' part). Also
/// finding 9's link items: `timeout` for a foreign call, and a link that floods the log.
@Suite struct HubLinkProofTests {
    static let here = "192.0.2.1:8080"
    static let nodeA = "192.0.2.10:8080"

    func hub(_ network: NodeRegistry, clock: ManualClock? = nil, log: LogCapture? = nil, meshKeys: Set<String>? = nil) async throws -> HubFixture {
        let fixture = try await HubFixture(node: Self.here, identity: .generate(), clock: clock,
                                           logger: log?.logger ?? .init(label: "test"), meshKeys: meshKeys)
        await fixture.hub.setProver(network.prover)
        return fixture
    }

    @Test func aClientClaimingAnotherNodesAddressIsRefusedAndTheRealNodeLinksAfterwards() async throws {
        let network = NodeRegistry()
        let fixture = try await hub(network)
        defer { Task { await fixture.close() } }
        let a = Identity.generate()
        network.run(a, at: Self.nodeA)
        let bob = try await fixture.login("bob", .generate())

        // Mallory claims A's address with a key of her own; the hub dials A, A proves its key.
        let mallory = await fixture.peer()
        let answer = try await mallory.link(as: Self.nodeA, .generate(), to: Self.here)
        guard case .error(let refusal) = answer.payload else { throw TestFailure("expected a refusal, got \(answer)") }
        #expect(refusal.code == .notProven, "\(refusal)")
        #expect(network.dialled == [Self.nodeA])
        // She is no link: chat "from alice@A" is what a client that never logged in sends.
        await mallory.send(.chat(ChatBody(text: "it's me, alice")), to: "bob", from: "alice@\(Self.nodeA)", id: "forged")
        #expect(try await mallory.error().code == .notLoggedIn)
        // A's address is not bound to her key, so A is not refused later with name-taken.
        #expect(try await fixture.store.key(of: "@\(Self.nodeA)") == nil)

        // The real A links and its peer's chat reaches bob: the first chat he gets.
        let real = await fixture.peer()
        let linked = try await real.linked(as: Self.nodeA, a, to: Self.here)
        #expect(linked.proven == true)
        #expect(try await fixture.store.key(of: "@\(Self.nodeA)") == a.publicKeyBase64)
        await real.send(.chat(ChatBody(text: "hi bob")), to: "bob", from: "alice@\(Self.nodeA)", id: "real")
        #expect(try await real.ack().of == "real")
        let chat = try await bob.next { message in if case .chat(let body) = message.payload { (message.from, body.text) } else { nil } }
        #expect(chat.0 == "alice@\(Self.nodeA)" && chat.1 == "hi bob")
    }

    @Test func aClaimNobodyCanProveCarriesMeshMessagesOnlyAndYieldsToTheRealNode() async throws {
        let network = NodeRegistry()
        let fixture = try await hub(network)
        defer { Task { await fixture.close() } }
        let bob = try await fixture.login("bob", .generate())
        await bob.send(.subscribe(NamesBody(names: ["alice@\(Self.nodeA)"])), id: "s1")
        #expect(try await bob.ack().of == "s1")
        let offline = try await bob.next { if case .presence(let body) = $0.payload { body } else { nil } }
        #expect(offline.status == .offline)

        // Nothing answers at A's address yet (A is down): mallory's link is not proven.
        let mallory = await fixture.peer()
        let malloryKey = Identity.generate()
        let linked = try await mallory.linked(as: Self.nodeA, malloryKey, to: Self.here)
        #expect(linked.proven == false)
        // Presence with her key, chat "from alice@A", a call: all refused, none reaches bob.
        await mallory.send(.presence(PresenceBody(name: "alice", status: .online, key: malloryKey.publicKeyBase64)), from: "@node", id: "p1")
        #expect(try await mallory.error().code == .notProven)
        await mallory.send(.chat(ChatBody(text: "it's me, alice")), to: "bob", from: "alice@\(Self.nodeA)", id: "c1")
        #expect(try await mallory.error().code == .notProven)
        #expect(try await fixture.store.key(of: "@\(Self.nodeA)") == nil)

        // A comes up and links: proven, and mallory's claim on its address is dropped.
        let a = Identity.generate()
        network.run(a, at: Self.nodeA)
        let real = await fixture.peer()
        #expect(try await real.linked(as: Self.nodeA, a, to: Self.here).proven == true)
        try await waitUntil("mallory's link to be closed") { await mallory.isClosed }
        // The hub asks A for alice's presence on bob's behalf; A's answer is the first bob gets.
        let names = try await real.next { if case .subscribe(let body) = $0.payload { body.names } else { nil } }
        #expect(names == ["alice"])
        let alice = Identity.generate()
        await real.send(.presence(Self.presence("alice", alice, attestedBy: a)), from: "@node")
        let presence = try await bob.next { if case .presence(let body) = $0.payload { body } else { nil } }
        #expect(presence.name == "alice@\(Self.nodeA)" && presence.status == .online && presence.key == alice.publicKeyBase64)
    }

    /// `presence` of `name@nodeA` online with `key`, attested by the node key `signer`.
    static func presence(_ name: String, _ key: Identity, attestedBy signer: Identity) -> PresenceBody {
        PresenceBody(name: name, status: .online, key: key.publicKeyBase64,
                     sig: signer.sign(text: PresenceBody.attestation(address: "\(name)@\(nodeA)", key: key.publicKeyBase64)))
    }

    /// "Chat and presence across links carry the origin node's signature": a name → key
    /// attestation counts only when the node at the link's other end signed it (the key it
    /// proved), so that nothing between the nodes can swap the key a peer pins.
    @Test func aPresenceKeyCountsOnlyWithTheOriginNodesSignature() async throws {
        let network = NodeRegistry()
        let fixture = try await hub(network)
        defer { Task { await fixture.close() } }
        let a = Identity.generate()
        network.run(a, at: Self.nodeA)
        let bob = await fixture.peer()
        let bobKey = Identity.generate()
        try await bob.login("bob", bobKey)
        let link = await fixture.peer()
        _ = try await link.linked(as: Self.nodeA, a, to: Self.here)
        await bob.send(.subscribe(NamesBody(names: ["alice@\(Self.nodeA)"])), id: "s1")
        _ = try await link.next { if case .subscribe = $0.payload { true } else { nil } }

        // A key without a signature, and one signed by another key (a swap on the way): refused.
        let mallory = Identity.generate()
        await link.send(.presence(PresenceBody(name: "alice", status: .online, key: mallory.publicKeyBase64)), from: "@node", id: "p1")
        #expect(try await link.error().code == .badSignature)
        await link.send(.presence(Self.presence("alice", mallory, attestedBy: mallory)), from: "@node", id: "p2")
        #expect(try await link.error().code == .badSignature)
        // A's own attestation: bob gets it, and it is the first online presence he gets.
        let alice = Identity.generate()
        await link.send(.presence(Self.presence("alice", alice, attestedBy: a)), from: "@node", id: "p3")
        let online = try await bob.next { if case .presence(let body) = $0.payload, body.status == .online { body } else { nil } }
        #expect(online.key == alice.publicKeyBase64)

        // The other way: this node attests its own peers' keys to the link.
        await link.send(.subscribe(NamesBody(names: ["bob"])), from: "@node")
        let answer = try await link.next { if case .presence(let body) = $0.payload, body.name == "bob" { body } else { nil } }
        let own = try #require(await fixture.hub.configuration.nodeIdentity)
        #expect(answer.key == bobKey.publicKeyBase64)
        #expect(Identity.verify(signatureBase64: answer.sig ?? "", text: PresenceBody.attestation(address: "bob@\(Self.here)", key: bobKey.publicKeyBase64),
                                publicKeyBase64: own.publicKeyBase64))
    }

    /// A node whose HTTP listener was not up when its link came in (a start-up race) is proven
    /// by a later dial-back, and the link then carries everything.
    @Test func aLinkIsPromotedWhenALaterDialBackProvesIt() async throws {
        let network = NodeRegistry()
        let fixture = try await hub(network)
        defer { Task { await fixture.close() } }
        let a = Identity.generate()
        let link = await fixture.peer()
        #expect(try await link.linked(as: Self.nodeA, a, to: Self.here).proven == false)
        network.run(a, at: Self.nodeA)
        let promoted = try await link.next(timeout: .seconds(10)) { if case .linked(let body) = $0.payload { body } else { nil } }
        #expect(promoted.proven == true)
        #expect(try await fixture.store.key(of: "@\(Self.nodeA)") == a.publicKeyBase64)
        #expect(await fixture.hub.linkedNodes == [Self.nodeA])
    }

    @Test func aLinksTimeoutForACallItDoesNotRingIsRefused() async throws {
        let network = NodeRegistry()
        let fixture = try await hub(network)
        defer { Task { await fixture.close() } }
        let a = Identity.generate()
        network.run(a, at: Self.nodeA)
        let bobKey = Identity.generate()
        let bob = try await fixture.login("bob", bobKey)
        let link = await fixture.peer()
        _ = try await link.linked(as: Self.nodeA, a, to: Self.here)

        // A call between two peers of this node, which the link has nothing to do with.
        let carol = await fixture.peer()
        let carolKey = Identity.generate()
        try await carol.login("carol", carolKey)
        let local = CallSigning.sign(CallPayload(type: .call, from: "carol", to: "bob", call: "local-call", kind: .audio, ts: Date().timeIntervalSince1970), with: carolKey)
        await carol.send(.callSetup(.call, local), to: "bob", from: "carol", id: "k1")
        #expect(try await carol.ack().of == "k1")
        _ = try await bob.next { if case .callSetup(.call, _) = $0.payload { true } else { nil } }

        for call in ["local-call", "no-such-call"] {
            await link.send(.timeout(TimeoutBody(call: call)), to: "bob", from: "@node", id: "t-\(call)")
            let error = try await link.error()
            #expect(error.code == .forbidden && error.of == "t-\(call)", "\(error)")
        }

        // A call alice@A placed to bob: A runs its ring timer and may end it.
        let alice = Identity.generate()
        let call = CallSigning.sign(CallPayload(type: .call, from: "alice", to: "bob", call: "remote-call", kind: .audio, ts: Date().timeIntervalSince1970), with: alice)
        await link.send(.callSetup(.call, call), to: "bob", from: "alice@\(Self.nodeA)", id: "k2")
        _ = try await bob.next { if case .callSetup(.call, let body) = $0.payload, body.payload.contains("remote-call") { true } else { nil } }
        await link.send(.timeout(TimeoutBody(call: "remote-call")), to: "bob", from: "@node", id: "t-remote")
        // The first timeout bob gets is that one: the refused ones never reached him.
        let timeout = try await bob.next { if case .timeout(let body) = $0.payload { body } else { nil } }
        #expect(timeout.call == "remote-call")
    }

    /// Finding 9: one link produced 29,761 warning lines in seconds. Now each kind of line is
    /// written once per interval and connection, with the count of those left out.
    @Test func floodingALinkOverItsRateLimitLogsABoundedNumberOfLines() async throws {
        let network = NodeRegistry()
        let clock = ManualClock()
        let log = LogCapture()
        let fixture = try await hub(network, clock: clock, log: log)
        defer { Task { await fixture.close() } }
        let a = Identity.generate()
        network.run(a, at: Self.nodeA)
        let link = await fixture.peer()
        _ = try await link.linked(as: Self.nodeA, a, to: Self.here)
        // A link's budget is 20 × 200 frames of burst; the clock stands still, so nothing refills.
        let bad = SignalingMessage(id: "m", from: "@node", to: "@node", payload: .mesh(MeshBody(records: [SignedNodeRecord(payload: "{}", sig: "")])))
        let text = SignalingCodec.encode(bad)
        for _ in 0..<10_000 { await link.send(text) }
        #expect(log.count(containing: "mesh: node record rejected") == 1, "\(log.all.suffix(5))")
        #expect(log.count(containing: "over its rate limit") == 1)
        #expect(log.all.count < 10, "\(log.all.count) lines")

        // After the interval the next line says how many were left out.
        clock.advance(by: LogLimiter.interval + .seconds(1))
        await link.send(text)
        let rejected = log.all.filter { $0.contains("mesh: node record rejected") }
        #expect(rejected.count == 2)
        #expect(rejected.last?.contains("suppressed=3999") == true, "\(rejected)")
    }

    /// `--mesh-key`: a closed mesh takes links and records of its keys only.
    @Test func aClosedMeshTakesOnlyItsKeys() async throws {
        let network = NodeRegistry()
        let a = Identity.generate()
        let c = Identity.generate()
        let fixture = try await hub(network, meshKeys: [a.publicKeyBase64, c.publicKeyBase64])
        defer { Task { await fixture.close() } }
        // A stranger, proven at its own address, is still refused.
        let stranger = Identity.generate()
        network.run(stranger, at: "192.0.2.20:8080")
        let refused = try await fixture.peer().link(as: "192.0.2.20:8080", stranger, to: Self.here)
        guard case .error(let refusal) = refused.payload else { throw TestFailure("expected a refusal, got \(refused)") }
        #expect(refusal.code == .forbidden)

        network.run(a, at: Self.nodeA)
        let link = await fixture.peer()
        #expect(try await link.linked(as: Self.nodeA, a, to: Self.here).proven == true)
        // Over it: the record of an allowed node and of a stranger; both run where they claim.
        network.run(c, at: "192.0.2.30:8080")
        network.run(stranger, at: "192.0.2.40:8080")
        let allowed = HubMeshTests.record(c, node: "192.0.2.30:8080").signed(by: c)
        let other = HubMeshTests.record(stranger, node: "192.0.2.40:8080").signed(by: stranger)
        await link.send(.mesh(MeshBody(records: [other, allowed])), from: "@node")
        try await waitUntil("C's record") { await fixture.hub.meshEntries.contains { $0.record.key == c.publicKeyBase64 } }
        #expect(await fixture.hub.meshEntries.map(\.record.node) == ["192.0.2.30:8080"])
        #expect(!network.dialled.contains("192.0.2.40:8080"), "a stranger's record made the hub dial")
    }
}

/// What a false claim can make a node dial: numeric unicast `host:port` only (no name lookups,
/// no wildcard, multicast or broadcast address).
@Suite struct NodeProverTests {
    @Test(arguments: ["0.0.0.0:8080", "0.1.2.3:8080", "[::]:8080", "224.0.0.1:8080", "255.255.255.255:8080", "[ff02::1]:8080",
                      "example.com:8080", "::1:8080", "127.0.0.1", "127.0.0.1:0"])
    func refusesToDial(_ address: String) {
        #expect(NodeProver.refusal(toDial: address) != nil)
    }

    @Test(arguments: ["127.0.0.1:8080", "198.51.100.10:8080", "[::1]:8080", "[2001:db8::1]:443"])
    func dials(_ address: String) {
        #expect(NodeProver.refusal(toDial: address) == nil)
    }

    /// The real dial-back over a WebSocket to a port where nothing listens: a failure, quickly.
    @Test func nothingListeningIsAFailure() async {
        let started = ContinuousClock.now
        let outcome = await NodeProver.webSocket(timeout: .seconds(3), logger: .init(label: "test")).prove("127.0.0.1:1")
        guard case .failed = outcome else { Issue.record("expected a failure, got \(outcome)"); return }
        #expect(ContinuousClock.now - started < .seconds(4))
    }
}
