import Foundation
import Testing
@testable import Signaling

/// Issue 8, "Membership": node records are signed, spread, refreshed, expire, and a bad or
/// forged record is rejected with a reason (one test per rejection).
@Suite struct MeshDirectoryTests {
    let own = Identity.generate()
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func record(_ identity: Identity, node: String = "198.51.100.20:8080", seq: Int = 1, expiresIn: Double = 30,
                relay: Bool = true, leaving: Bool? = nil) -> NodeRecord {
        NodeRecord(node: node, key: identity.publicKeyBase64, stun: ["stun:198.51.100.20:3478"],
                   turn: ["turn:198.51.100.20:3478?transport=udp", "turns:198.51.100.20:5349?transport=tcp"],
                   reachability: relay ? .reachable : .unknown, relay: relay, capacity: 100, load: 3, version: "0.1.0",
                   seq: seq, expires: now.timeIntervalSince1970 + expiresIn, links: ["198.51.100.10:8080"], leaving: leaving)
    }

    func directory() -> MeshDirectory { MeshDirectory(ownNode: "198.51.100.10:8080", ownKey: own.publicKeyBase64) }

    func rejection(_ outcome: MeshDirectory.Outcome) -> MeshRecordRejection.Code? {
        if case .rejected(let why) = outcome { return why.code }
        return nil
    }

    @Test func aSignedRecordIsLearnedRefreshedAndExpires() {
        var mesh = directory()
        let other = Identity.generate()
        #expect(mesh.accept(record(other).signed(by: other), via: "198.51.100.10:8080", pinnedKey: nil, now: now) == .added(record(other)))
        // The same record again (gossip brings it many times) and an older one change nothing.
        #expect(mesh.accept(record(other).signed(by: other), via: nil, pinnedKey: nil, now: now) == .unchanged)
        let newer = record(other, seq: 2, expiresIn: 40)
        #expect(mesh.accept(newer.signed(by: other), via: nil, pinnedKey: nil, now: now) == .updated(newer))
        #expect(mesh.accept(record(other, seq: 1).signed(by: other), via: nil, pinnedKey: nil, now: now) == .unchanged)
        #expect(mesh.records == [newer])
        // Not refreshed: gone at expiry.
        #expect(mesh.expire(now: now.addingTimeInterval(39)).isEmpty)
        #expect(mesh.expire(now: now.addingTimeInterval(40)) == [newer])
        #expect(mesh.records.isEmpty)
    }

    @Test func aLeavingNodeIsDroppedAndAnOlderCopyDoesNotBringItBack() {
        var mesh = directory()
        let other = Identity.generate()
        _ = mesh.accept(record(other).signed(by: other), via: nil, pinnedKey: nil, now: now)
        let bye = record(other, seq: 2, leaving: true)
        #expect(mesh.accept(bye.signed(by: other), via: nil, pinnedKey: nil, now: now) == .left(bye))
        #expect(mesh.records.isEmpty)
        #expect(mesh.accept(record(other, seq: 1).signed(by: other), via: nil, pinnedKey: nil, now: now) == .unchanged)
        #expect(mesh.records.isEmpty)
        // A restarted node signs a higher sequence number and is back.
        #expect(mesh.accept(record(other, seq: 3).signed(by: other), via: nil, pinnedKey: nil, now: now) == .added(record(other, seq: 3)))
    }

    @Test func ourOwnRecordComingBackIsIgnored() {
        var mesh = directory()
        #expect(mesh.accept(record(own, node: "198.51.100.10:8080").signed(by: own), via: nil, pinnedKey: nil, now: now) == .unchanged)
        #expect(mesh.records.isEmpty)
    }

    // MARK: - One test per rejection

    @Test func rejectsAForgedSignature() {
        var mesh = directory()
        let victim = Identity.generate()
        let forger = Identity.generate()
        // The forger signs a record that names the victim's key.
        var signed = record(victim).signed(by: forger)
        #expect(rejection(mesh.accept(signed, via: nil, pinnedKey: nil, now: now)) == .badSignature)
        // A field changed after signing.
        signed = record(victim).signed(by: victim)
        signed.payload = signed.payload.replacingOccurrences(of: "\"load\":3", with: "\"load\":0")
        #expect(rejection(mesh.accept(signed, via: nil, pinnedKey: nil, now: now)) == .badSignature)
    }

    @Test func rejectsMalformedRecords() {
        var mesh = directory()
        #expect(rejection(mesh.accept(SignedNodeRecord(payload: "{\"node\":1}", sig: ""), via: nil, pinnedKey: nil, now: now)) == .malformed)
        #expect(rejection(mesh.accept(SignedNodeRecord(payload: String(repeating: "x", count: 9000), sig: ""), via: nil, pinnedKey: nil, now: now)) == .malformed)
    }

    @Test func rejectsAnExpiredRecord() {
        var mesh = directory()
        let other = Identity.generate()
        #expect(rejection(mesh.accept(record(other, expiresIn: -1).signed(by: other), via: nil, pinnedKey: nil, now: now)) == .expired)
    }

    @Test func rejectsARecordThatWouldLiveTooLong() {
        var mesh = directory()
        let other = Identity.generate()
        #expect(rejection(mesh.accept(record(other, expiresIn: 86_400).signed(by: other), via: nil, pinnedKey: nil, now: now)) == .tooLongLived)
    }

    @Test func rejectsBadFields() {
        var mesh = directory()
        let other = Identity.generate()
        var bad = record(other, node: "no port")
        #expect(rejection(mesh.accept(bad.signed(by: other), via: nil, pinnedKey: nil, now: now)) == .badField)
        bad = record(other)
        bad.turn = ["turn:relay.example.com:3478"]  // a name, not an address: nothing to verify
        #expect(rejection(mesh.accept(bad.signed(by: other), via: nil, pinnedKey: nil, now: now)) == .badField)
        bad = record(other)
        bad.stun = ["turn:198.51.100.20:3478"]
        #expect(rejection(mesh.accept(bad.signed(by: other), via: nil, pinnedKey: nil, now: now)) == .badField)
        bad = record(other)
        bad.reachability = .unreachable  // relay claimed without reachability
        #expect(rejection(mesh.accept(bad.signed(by: other), via: nil, pinnedKey: nil, now: now)) == .badField)
        bad = record(other)
        bad.load = -1
        #expect(rejection(mesh.accept(bad.signed(by: other), via: nil, pinnedKey: nil, now: now)) == .badField)
    }

    @Test func rejectsAnAddressHeldByAnotherKey() {
        var mesh = directory()
        let first = Identity.generate()
        let squatter = Identity.generate()
        _ = mesh.accept(record(first).signed(by: first), via: nil, pinnedKey: nil, now: now)
        #expect(rejection(mesh.accept(record(squatter).signed(by: squatter), via: nil, pinnedKey: nil, now: now)) == .addressTaken)
        // A link pinned the address to a key: another key's record for it is refused.
        var fresh = directory()
        #expect(rejection(fresh.accept(record(squatter).signed(by: squatter), via: nil, pinnedKey: first.publicKeyBase64, now: now)) == .addressTaken)
    }

    @Test func rejectsARecordClaimingThisNodesAddress() {
        var mesh = directory()
        let impostor = Identity.generate()
        #expect(rejection(mesh.accept(record(impostor, node: "198.51.100.10:8080").signed(by: impostor), via: nil, pinnedKey: nil, now: now)) == .impersonation)
    }

    @Test func rejectsNodesBeyondTheLimit() {
        var mesh = directory()
        for index in 0..<MeshDirectory.maximumNodes {
            let identity = Identity.generate()
            _ = mesh.accept(record(identity, node: "10.\(index / 256).\(index % 256).1:8080").signed(by: identity), via: nil, pinnedKey: nil, now: now)
        }
        let late = Identity.generate()
        #expect(rejection(mesh.accept(record(late).signed(by: late), via: nil, pinnedKey: nil, now: now)) == .full)
    }

    // MARK: - Budgets (issue 15, finding 3)

    /// A record of a fresh key at an address of its own.
    func fresh(_ index: Int, expiresIn: Double = 30) -> SignedNodeRecord {
        let identity = Identity.generate()
        return record(identity, node: "10.\(index / 250).\(index % 250).1:8080", expiresIn: expiresIn).signed(by: identity)
    }

    @Test func oneLinkCannotFillTheDirectoryAndNewcomersStillGetIn() {
        var mesh = directory()
        var outcomes: [MeshRecordRejection.Code?] = []
        for index in 0..<1000 {
            outcomes.append(rejection(mesh.accept(fresh(index), via: "evil:1", pinnedKey: nil, now: now)))
        }
        #expect(outcomes.filter { $0 == nil }.count == MeshDirectory.maximumPerLink)
        #expect(outcomes.filter { $0 == .full }.count == 1000 - MeshDirectory.maximumPerLink)
        let newcomer = Identity.generate()
        #expect(mesh.accept(record(newcomer).signed(by: newcomer), via: "good:1", pinnedKey: nil, now: now) == .added(record(newcomer)))

        // Two links together fill it: a newcomer over a third link evicts from the link holding
        // the most, so it still gets in and the total stays at the limit.
        for index in 1000..<1499 { _ = mesh.accept(fresh(index), via: "evil:2", pinnedKey: nil, now: now) }
        #expect(mesh.count == MeshDirectory.maximumNodes)
        let late = Identity.generate()
        let lateRecord = record(late, node: "198.51.100.99:8080")
        #expect(mesh.accept(lateRecord.signed(by: late), via: "good:2", pinnedKey: nil, now: now) == .added(lateRecord))
        #expect(mesh.count == MeshDirectory.maximumNodes)
        #expect(mesh.entries[newcomer.publicKeyBase64] != nil, "a link with one node lost it to the flood")
        // The small link keeps getting in: the links holding the most make way.
        let third = Identity.generate()
        #expect(rejection(mesh.accept(record(third, node: "198.51.100.98:8080").signed(by: third), via: "good:1", pinnedKey: nil, now: now)) == nil)
    }

    @Test func tombstonesCountAgainstTheLimits() {
        var mesh = directory()
        var identities: [Identity] = []
        for index in 0..<MeshDirectory.maximumPerLink {
            let identity = Identity.generate()
            identities.append(identity)
            _ = mesh.accept(record(identity, node: "10.\(index / 250).\(index % 250).1:8080").signed(by: identity), via: "evil:1", pinnedKey: nil, now: now)
        }
        // Every one of them leaves: their tombstones keep their places.
        for (index, identity) in identities.enumerated() {
            let bye = record(identity, node: "10.\(index / 250).\(index % 250).1:8080", seq: 2, leaving: true)
            #expect(mesh.accept(bye.signed(by: identity), via: "evil:1", pinnedKey: nil, now: now) == .left(bye))
        }
        #expect(mesh.entries.isEmpty && mesh.count == MeshDirectory.maximumPerLink)
        #expect(rejection(mesh.accept(fresh(999), via: "evil:1", pinnedKey: nil, now: now)) == .full)
        // A leaving record of a node never held leaves no tombstone.
        let stranger = Identity.generate()
        #expect(mesh.accept(record(stranger, seq: 5, leaving: true).signed(by: stranger), via: "evil:2", pinnedKey: nil, now: now) == .unchanged)
        #expect(mesh.count == MeshDirectory.maximumPerLink)
        // Tombstones expire with the records they stand for.
        _ = mesh.expire(now: now.addingTimeInterval(31))
        #expect(mesh.count == 0)
    }

    @Test func recordsWaitingForProofHaveABudgetPerLinkAndInAll() {
        var mesh = directory()
        for index in 0..<40 { _ = mesh.hold(fresh(index), via: "evil:1", pinnedKey: nil, now: now) }
        #expect(mesh.unproven.count == MeshDirectory.maximumUnprovenPerLink)
        for link in 0..<20 {
            for index in 0..<MeshDirectory.maximumUnprovenPerLink { _ = mesh.hold(fresh(100 + link * 10 + index), via: "link:\(link)", pinnedKey: nil, now: now) }
        }
        #expect(mesh.unproven.count == MeshDirectory.maximumUnproven)
        // Held records are not used: not among the records, not counted as nodes.
        #expect(mesh.records.isEmpty && mesh.count == 0)
        // They expire too.
        _ = mesh.expire(now: now.addingTimeInterval(31))
        #expect(mesh.unproven.isEmpty)
    }

    @Test func aClosedMeshRefusesOtherKeys() {
        let allowed = Identity.generate()
        var mesh = MeshDirectory(ownNode: "198.51.100.10:8080", ownKey: own.publicKeyBase64, allowedKeys: [allowed.publicKeyBase64])
        #expect(mesh.accept(record(allowed).signed(by: allowed), via: nil, pinnedKey: nil, now: now) == .added(record(allowed)))
        let stranger = Identity.generate()
        #expect(rejection(mesh.accept(record(stranger, node: "198.51.100.30:8080").signed(by: stranger), via: nil, pinnedKey: nil, now: now)) == .notAllowed)
        if case .success = mesh.hold(record(stranger, node: "198.51.100.30:8080").signed(by: stranger), via: nil, pinnedKey: nil, now: now) {
            Issue.record("a stranger's record was held for proof")
        }
    }

    @Test func recordsTravelInMeshMessages() throws {
        let other = Identity.generate()
        let message = SignalingMessage(id: "g1", from: "@node", to: "@node", payload: .mesh(MeshBody(records: [record(other).signed(by: other)])))
        #expect(try SignalingCodec.decode(SignalingCodec.encode(message)) == message)
        let ask = SignalingMessage(id: "d1", from: "@node", to: "@node", payload: .dialback(DialbackBody(udp: ["198.51.100.20:3478"], tcp: [])))
        #expect(try SignalingCodec.decode(SignalingCodec.encode(ask)) == ask)
        let answer = SignalingMessage(id: "d2", from: "@node", to: "@node", payload: .dialbackResult(DialbackResultBody(
            of: "d1", results: [DialbackOutcome(transport: "udp", address: "198.51.100.20:3478", ok: true, rttMs: 1.5)], observed: "198.51.100.20")))
        #expect(try SignalingCodec.decode(SignalingCodec.encode(answer)) == answer)
        #expect(SignalingCodec.encode(answer).contains("\"type\":\"dialback-result\""))
    }

    @Test func sharedSecretIsTheSameOnBothSidesAndDiffersPerPair() throws {
        let a = Identity.generate()
        let b = Identity.generate()
        let c = Identity.generate()
        let ab = try #require(a.sharedSecret(with: b.publicKeyBase64, context: "x"))
        #expect(b.sharedSecret(with: a.publicKeyBase64, context: "x") == ab)
        #expect(a.sharedSecret(with: c.publicKeyBase64, context: "x") != ab)
        #expect(a.sharedSecret(with: b.publicKeyBase64, context: "y") != ab)
        #expect(a.sharedSecret(with: "not a key", context: "x") == nil)
    }
}
