import Foundation
import Testing
import TestSupport
@testable import Signaling

/// Issue 8, "Membership", at the hub: records arriving over one link are checked, filed and
/// flooded to the other links; a forged one stops here.
@Suite struct HubMeshTests {
    static let here = "192.0.2.1:8080"

    /// A test connection that logs in as the node at `node` (the `link` handshake); that node
    /// runs in `network`, so the hub's dial-back proves it.
    func linked(_ fixture: HubFixture, as node: String, _ identity: Identity, in network: NodeRegistry) async throws -> TestPeer {
        network.run(identity, at: node)
        let peer = await fixture.peer()
        let body = try await peer.linked(as: node, identity, to: Self.here)
        guard body.proven == true else { throw TestFailure("the link as \(node) was not proven") }
        return peer
    }

    static func record(_ identity: Identity, node: String, seq: Int = 1) -> NodeRecord {
        NodeRecord(node: node, key: identity.publicKeyBase64, stun: ["stun:192.0.2.30:3478"], turn: ["turn:192.0.2.30:3478?transport=udp"],
                   reachability: .reachable, relay: true, capacity: 10, load: 0, version: "0.1.0", seq: seq,
                   expires: Date().timeIntervalSince1970 + 30, links: [])
    }

    func record(_ identity: Identity, node: String, seq: Int = 1) -> NodeRecord {
        Self.record(identity, node: node, seq: seq)
    }

    /// A hub whose dial-backs reach the nodes of `network`.
    func fixture(_ network: NodeRegistry, clock: ManualClock? = nil) async throws -> HubFixture {
        let fixture = try await HubFixture(node: Self.here, identity: .generate(), clock: clock)
        await fixture.hub.setProver(network.prover)
        return fixture
    }

    @Test func validRecordsAreFloodedForgedOnesAreNot() async throws {
        let network = NodeRegistry()
        let fixture = try await fixture(network)
        defer { Task { await fixture.close() } }
        let east = Identity.generate()
        let west = Identity.generate()
        let eastLink = try await linked(fixture, as: "192.0.2.10:8080", east, in: network)
        let westLink = try await linked(fixture, as: "192.0.2.20:8080", west, in: network)
        // Every node below runs where its record says, so this hub's dial-backs prove them.
        let third = Identity.generate()
        let fourth = Identity.generate()
        let fifth = Identity.generate()
        let sixth = Identity.generate()
        for (identity, node) in [(third, "192.0.2.30:8080"), (fourth, "192.0.2.31:8080"), (fifth, "192.0.2.32:8080"), (sixth, "192.0.2.33:8080")] {
            network.run(identity, at: node)
        }

        // A third node's record comes in over east: west gets it, east does not get it back.
        let good = record(third, node: "192.0.2.30:8080").signed(by: third)
        await eastLink.send(.mesh(MeshBody(records: [good])), from: "@node")
        let flooded = try await westLink.next { if case .mesh(let body) = $0.payload { body } else { nil } }
        #expect(flooded.records == [good])
        // What the hub floods on a link arrives in order: the next record east gets is one west
        // sent after, so the third node's record did not come back to east before it.
        let marker = record(fourth, node: "192.0.2.31:8080").signed(by: fourth)
        await westLink.send(.mesh(MeshBody(records: [marker])), from: "@node")
        #expect(try await Self.nextRecords(eastLink) == [marker], "east got its own record back")
        #expect(await Set(fixture.hub.meshEntries.map(\.record.node)) == ["192.0.2.30:8080", "192.0.2.31:8080"])

        // The same record again is no news: nothing is flooded before the next news.
        await eastLink.send(.mesh(MeshBody(records: [good])), from: "@node")
        let news = record(fifth, node: "192.0.2.32:8080").signed(by: fifth)
        await eastLink.send(.mesh(MeshBody(records: [news])), from: "@node")
        #expect(try await Self.nextRecords(westLink) == [news], "a known record was flooded again")

        // A record for west's address signed by another key: refused, not passed on.
        let forger = Identity.generate()
        await eastLink.send(.mesh(MeshBody(records: [record(forger, node: "192.0.2.20:8080").signed(by: forger)])), from: "@node")
        // A record whose signature does not match its key.
        var forged = record(Identity.generate(), node: "192.0.2.40:8080").signed(by: forger)
        forged.sig = forger.sign(text: SignedNodeRecord.signedText(forged.payload))
        await eastLink.send(.mesh(MeshBody(records: [forged])), from: "@node")
        let later = record(sixth, node: "192.0.2.33:8080").signed(by: sixth)
        await eastLink.send(.mesh(MeshBody(records: [later])), from: "@node")
        #expect(try await Self.nextRecords(westLink) == [later], "a forged record was flooded")
        #expect(await Set(fixture.hub.meshEntries.map(\.record.node)) == ["192.0.2.30:8080", "192.0.2.31:8080", "192.0.2.32:8080", "192.0.2.33:8080"])
    }

    /// The records of the next `mesh` message on a link.
    static func nextRecords(_ link: TestPeer) async throws -> [SignedNodeRecord] {
        try await link.next { if case .mesh(let body) = $0.payload { body.records } else { nil } }
    }

    /// Finding 3: one link filled a directory with 1,000 forged nodes so that genuine newcomers
    /// were refused (`full`). Now a record is used only once its address is proven, dial-backs
    /// per link are few, and what waits for proof has a small budget per link.
    @Test func oneLinkSendingAThousandForgedRecordsDoesNotKeepNewcomersOut() async throws {
        let network = NodeRegistry()
        // The clock stands still: the link's dial-back budget does not refill during the test.
        let fixture = try await fixture(network, clock: ManualClock())
        defer { Task { await fixture.close() } }
        let attacker = try await linked(fixture, as: "192.0.2.10:8080", .generate(), in: network)
        let west = try await linked(fixture, as: "192.0.2.20:8080", .generate(), in: network)
        // 1,000 records, each signed by a key of its own, for addresses where nothing answers.
        let forged = (0..<1000).map { index -> SignedNodeRecord in
            let key = Identity.generate()
            return Self.record(key, node: "10.\(index / 250).\(index % 250).1:8080").signed(by: key)
        }
        for start in stride(from: 0, to: forged.count, by: 50) {
            await attacker.send(.mesh(MeshBody(records: Array(forged[start..<start + 50]))), from: "@node")
        }
        // A genuine newcomer, gossiped by west, is proven and learned.
        let newcomer = Identity.generate()
        network.run(newcomer, at: "192.0.2.50:8080")
        let genuine = record(newcomer, node: "192.0.2.50:8080").signed(by: newcomer)
        await west.send(.mesh(MeshBody(records: [genuine])), from: "@node")
        try await waitUntil("the newcomer to be learned") { await fixture.hub.meshEntries.contains { $0.record.key == newcomer.publicKeyBase64 } }
        #expect(await fixture.hub.meshEntries.map(\.record.node) == ["192.0.2.50:8080"], "a forged record was used")
        // What waits for proof is bounded per link, and so are the dials the flood caused.
        #expect(await fixture.hub.unprovenCount <= MeshDirectory.maximumUnprovenPerLink)
        let dials = network.dialled.filter { $0.hasPrefix("10.") }.count
        #expect(dials <= LinkTrust.recordProofsPerLink, "the flood made the hub dial \(dials) addresses")
        // Gossip goes on: the attacker's link gets the newcomer's record like any other link.
        #expect(try await Self.nextRecords(attacker) == [genuine])
    }

    /// Finding 3: a forged record pointing at an attacker's port was listed and handed out. A
    /// record whose address holds another key is dropped, one nobody answers for is held,
    /// unused, until it expires.
    @Test func aRecordIsUsedOnlyWhenItsAddressProvesItsKey() async throws {
        let network = NodeRegistry()
        let fixture = try await fixture(network)
        defer { Task { await fixture.close() } }
        let link = try await linked(fixture, as: "192.0.2.10:8080", .generate(), in: network)
        let victim = Identity.generate()
        network.run(victim, at: "192.0.2.60:8080")
        let forger = Identity.generate()
        // Claims the victim's address with the forger's key, then an address nobody answers at.
        await link.send(.mesh(MeshBody(records: [record(forger, node: "192.0.2.60:8080").signed(by: forger)])), from: "@node")
        try await waitUntil("the dial-back of the victim's address") { network.dialled.contains("192.0.2.60:8080") }
        let other = Identity.generate()
        await link.send(.mesh(MeshBody(records: [record(other, node: "192.0.2.61:8080").signed(by: other)])), from: "@node")
        try await waitUntil("the dial-back of the empty address") { network.dialled.contains("192.0.2.61:8080") }
        // A marker record that proves: once it is learned, the others' dial-backs are done too.
        let marker = Identity.generate()
        network.run(marker, at: "192.0.2.62:8080")
        await link.send(.mesh(MeshBody(records: [record(marker, node: "192.0.2.62:8080").signed(by: marker)])), from: "@node")
        try await waitUntil("the marker") { await fixture.hub.meshEntries.count == 1 }
        #expect(await fixture.hub.meshEntries.map(\.record.key) == [marker.publicKeyBase64])
        #expect(await fixture.hub.unprovenCount == 1, "the record nobody answers for is held, unused")
    }

    @Test func clientsMayNotSendMeshMessages() async throws {
        let fixture = try await HubFixture(node: "192.0.2.1:8080", identity: .generate())
        defer { Task { await fixture.close() } }
        let alice = await fixture.peer()
        _ = try await alice.login("alice", .generate())
        await alice.send(.dialback(DialbackBody(udp: ["192.0.2.50:3478"], tcp: [])))
        #expect(try await alice.error().code == .forbidden)
    }
}
