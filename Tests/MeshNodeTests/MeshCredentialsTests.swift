import Foundation
import ICE
import Signaling
import Testing
@testable import MeshNode
import STUN

/// Issue 8, "Relay choice": TURN credentials issued by a peer's home node are accepted by the
/// relays of the mesh, and by nobody else (docs/mesh.md "TURN credentials").
@Suite struct MeshCredentialsTests {
    let home = MeshCredentials(identity: .generate())
    let relay = MeshCredentials(identity: .generate())

    @Test func aRelayAcceptsCredentialsItsMemberIssued() throws {
        relay.setMembers([home.identity.publicKeyBase64])
        let issued = try #require(home.issue(peer: "alice", relayKey: relay.identity.publicKeyBase64, lifetime: 3600))
        #expect(issued.username.hasSuffix(":alice"))
        #expect(relay.password(forUsername: issued.username) == issued.password)
        // The long-term key a standard client computes from these matches what the relay uses.
        #expect(LongTermCredentials.key(username: issued.username, realm: "meshnode", password: issued.password)
                == LongTermCredentials.key(username: issued.username, realm: "meshnode", password: relay.password(forUsername: issued.username)!))
    }

    @Test func credentialsForOneRelayAreWorthlessAtAnother() throws {
        let other = MeshCredentials(identity: .generate())
        other.setMembers([home.identity.publicKeyBase64])
        relay.setMembers([home.identity.publicKeyBase64])
        let issued = try #require(home.issue(peer: "alice", relayKey: relay.identity.publicKeyBase64, lifetime: 3600))
        #expect(other.password(forUsername: issued.username) != issued.password)
    }

    @Test func aRelayRefusesIssuersThatAreNotMembersAndExpiredOrAlteredUsernames() throws {
        let issued = try #require(home.issue(peer: "alice", relayKey: relay.identity.publicKeyBase64, lifetime: 3600))
        relay.setMembers([])
        #expect(relay.password(forUsername: issued.username) == nil)
        relay.setMembers([home.identity.publicKeyBase64])
        let old = try #require(home.issue(peer: "alice", relayKey: relay.identity.publicKeyBase64, lifetime: 60, now: Date().addingTimeInterval(-120)))
        #expect(relay.password(forUsername: old.username) == nil)
        // Changing the peer or the expiry changes the password the relay expects.
        let renamed = issued.username.replacingOccurrences(of: ":alice", with: ":mallory")
        #expect(relay.password(forUsername: renamed) != issued.password)
        // Not a mesh username at all: left to the other mechanisms.
        #expect(relay.password(forUsername: "1767225600:alice") == nil)
    }

    @Test func connectionCapDefaultsLeaveHeadroom() {
        #expect(ConnectionLimit.defaultMaximum(openFileLimit: 20_000) == 18_000)
        #expect(ConnectionLimit.defaultMaximum(openFileLimit: 1024) == 512)
        let limit = ConnectionLimit(maximum: 2)
        #expect(limit.acquire() && limit.acquire() && !limit.acquire())
        limit.release()
        #expect(limit.acquire())
    }
}
