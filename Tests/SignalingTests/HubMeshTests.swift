import Foundation
import Testing
import TestSupport
@testable import Signaling

/// Issue 8, "Membership", at the hub: records arriving over one link are checked, filed and
/// flooded to the other links; a forged one stops here.
@Suite struct HubMeshTests {
    /// Two test connections that log in as nodes (the `link` handshake).
    func linked(_ fixture: HubFixture, as node: String, _ identity: Identity) async throws -> TestPeer {
        let peer = await fixture.peer()
        let challenge = try await peer.next()
        guard case .challenge(let body) = challenge.payload else { throw TestFailure("expected a challenge") }
        await peer.send(.link(LinkBody(node: node, key: identity.publicKeyBase64,
                                       sig: identity.sign(text: LinkBody.signedText(nonce: body.nonce, node: node)), nonce: "bm9uY2U=")))
        _ = try await peer.next { if case .linked = $0.payload { true } else { nil } }
        return peer
    }

    func record(_ identity: Identity, node: String, seq: Int = 1) -> NodeRecord {
        NodeRecord(node: node, key: identity.publicKeyBase64, stun: ["stun:192.0.2.30:3478"], turn: ["turn:192.0.2.30:3478?transport=udp"],
                   reachability: .reachable, relay: true, capacity: 10, load: 0, version: "0.1.0", seq: seq,
                   expires: Date().timeIntervalSince1970 + 30, links: [])
    }

    @Test func validRecordsAreFloodedForgedOnesAreNot() async throws {
        let fixture = try await HubFixture(node: "192.0.2.1:8080", identity: .generate())
        defer { Task { await fixture.close() } }
        let east = Identity.generate()
        let west = Identity.generate()
        let eastLink = try await linked(fixture, as: "192.0.2.10:8080", east)
        let westLink = try await linked(fixture, as: "192.0.2.20:8080", west)

        // A third node's record comes in over east: west gets it, east does not get it back.
        let third = Identity.generate()
        let good = record(third, node: "192.0.2.30:8080").signed(by: third)
        await eastLink.send(.mesh(MeshBody(records: [good])), from: "@node")
        let flooded = try await westLink.next { if case .mesh(let body) = $0.payload { body } else { nil } }
        #expect(flooded.records == [good])
        // What the hub floods on a link arrives in order: the next record east gets is one west
        // sent after, so the third node's record did not come back to east before it.
        let fourth = Identity.generate()
        let marker = record(fourth, node: "192.0.2.31:8080").signed(by: fourth)
        await westLink.send(.mesh(MeshBody(records: [marker])), from: "@node")
        #expect(try await Self.nextRecords(eastLink) == [marker], "east got its own record back")
        #expect(await Set(fixture.hub.meshEntries.map(\.record.node)) == ["192.0.2.30:8080", "192.0.2.31:8080"])

        // The same record again is no news: nothing is flooded before the next news.
        await eastLink.send(.mesh(MeshBody(records: [good])), from: "@node")
        let fifth = Identity.generate()
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
        let sixth = Identity.generate()
        let later = record(sixth, node: "192.0.2.33:8080").signed(by: sixth)
        await eastLink.send(.mesh(MeshBody(records: [later])), from: "@node")
        #expect(try await Self.nextRecords(westLink) == [later], "a forged record was flooded")
        #expect(await Set(fixture.hub.meshEntries.map(\.record.node)) == ["192.0.2.30:8080", "192.0.2.31:8080", "192.0.2.32:8080", "192.0.2.33:8080"])
    }

    /// The records of the next `mesh` message on a link.
    static func nextRecords(_ link: TestPeer) async throws -> [SignedNodeRecord] {
        try await link.next { if case .mesh(let body) = $0.payload { body.records } else { nil } }
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
