import Foundation
import ICE
import Signaling
import Testing
import TestSupport
@testable import MeshNode
import STUN
import TURNServer

/// Issue 8, "Relay choice": TURN credentials issued by a peer's home node are accepted by the
/// relays of the mesh, and by nobody else (docs/mesh.md "TURN credentials valid across the mesh":
/// `username = EXPIRY:base64url(issuer key):PEER`, `password = base64(HMAC-SHA1(K(I,R), username))`
/// with `K(I,R)` the secret issuer and relay derive from their node keys).
@Suite struct MeshCredentialsTests {
    let home = MeshCredentials(identity: .generate())
    let relay = MeshCredentials(identity: .generate())
    /// A fixed instant: expiry is checked against the time the credentials are given.
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    @Test("issuer and relay compute the same password without exchanging a secret, either way round")
    func bothEndsComputeTheSamePassword() throws {
        relay.setMembers([home.identity.publicKeyBase64])
        let issued = try #require(home.issue(peer: "alice", relayKey: relay.identity.publicKeyBase64, lifetime: 3600, now: Self.now))
        #expect(issued.username == "1800003600:\(MeshCredentials.base64url(home.identity.publicKeyBase64)):alice")
        #expect(relay.password(forUsername: issued.username, now: Self.now) == issued.password)
        // K(I,R) = K(R,I): a peer of the relay's node gets credentials the home node accepts.
        home.setMembers([relay.identity.publicKeyBase64])
        let back = try #require(relay.issue(peer: "bob", relayKey: home.identity.publicKeyBase64, lifetime: 3600, now: Self.now))
        #expect(home.password(forUsername: back.username, now: Self.now) == back.password)
    }

    @Test("the secret is pairwise: credentials for one relay are worthless at another, and issuers differ")
    func passwordsDifferPerPair() throws {
        let other = MeshCredentials(identity: .generate())
        other.setMembers([home.identity.publicKeyBase64])
        let secondHome = MeshCredentials(identity: .generate())
        relay.setMembers([home.identity.publicKeyBase64, secondHome.identity.publicKeyBase64])
        let issued = try #require(home.issue(peer: "alice", relayKey: relay.identity.publicKeyBase64, lifetime: 3600, now: Self.now))
        // The other relay trusts the issuer too, yet derives a different password: K(I,R) ≠ K(I,R').
        let atOther = try #require(other.password(forUsername: issued.username, now: Self.now))
        #expect(atOther != issued.password)
        // Another issuer for the same peer, expiry and relay: its own username and password.
        let fromSecond = try #require(secondHome.issue(peer: "alice", relayKey: relay.identity.publicKeyBase64, lifetime: 3600, now: Self.now))
        #expect(fromSecond.username != issued.username && fromSecond.password != issued.password)
        #expect(relay.password(forUsername: fromSecond.username, now: Self.now) == fromSecond.password)
    }

    @Test("credentials are accepted until their expiry second and refused from then on")
    func credentialsExpire() throws {
        relay.setMembers([home.identity.publicKeyBase64])
        let issued = try #require(home.issue(peer: "alice", relayKey: relay.identity.publicKeyBase64, lifetime: 60, now: Self.now))
        #expect(relay.password(forUsername: issued.username, now: Self.now.addingTimeInterval(59)) == issued.password)
        #expect(relay.password(forUsername: issued.username, now: Self.now.addingTimeInterval(60)) == nil)
    }

    /// Issue 15, finding 9: mesh credentials had no upper bound on expiry. A username that
    /// expires years ahead (made by whoever holds a pairwise secret, or leaked) is refused; the
    /// issuer cannot make one either.
    @Test("a username expiring further ahead than a day is refused, and none is issued")
    func expiryHasAnUpperBound() throws {
        relay.setMembers([home.identity.publicKeyBase64])
        let secret = try #require(home.identity.sharedSecret(with: relay.identity.publicKeyBase64, context: MeshCredentials.context))
        let issuer = MeshCredentials.base64url(home.identity.publicKeyBase64)
        let time = Int(Self.now.timeIntervalSince1970)
        let tenYears = "\(time + 10 * 365 * 86_400):\(issuer):alice"
        #expect(relay.password(forUsername: tenYears, now: Self.now) == nil)
        let justADay = "\(time + MeshCredentials.maximumLifetime):\(issuer):alice"
        #expect(relay.password(forUsername: justADay, now: Self.now) == MeshCredentials.password(secret: secret, username: justADay))
        let issued = try #require(home.issue(peer: "alice", relayKey: relay.identity.publicKeyBase64, lifetime: 10 * 365 * 86_400, now: Self.now))
        #expect(issued.username.hasPrefix("\(time + MeshCredentials.maximumLifetime):"))
        #expect(relay.password(forUsername: issued.username, now: Self.now) == issued.password)
    }

    @Test("a relay refuses issuers that are not members, and usernames that are not the mesh's")
    func onlyMembersIssue() throws {
        let issued = try #require(home.issue(peer: "alice", relayKey: relay.identity.publicKeyBase64, lifetime: 3600, now: Self.now))
        relay.setMembers([])
        #expect(relay.password(forUsername: issued.username, now: Self.now) == nil)
        relay.setMembers([home.identity.publicKeyBase64])
        #expect(relay.password(forUsername: issued.username, now: Self.now) == issued.password)
        // Not a mesh username at all (TURN REST form, garbage): left to the other mechanisms.
        #expect(relay.password(forUsername: "1767225600:alice", now: Self.now) == nil)
        #expect(relay.password(forUsername: "x:y:z", now: Self.now) == nil)
    }

    /// The relay end to end: our TURN server resolving usernames through `MeshCredentials`, and
    /// libnice's TURN client (an implementation of RFC 8489 long-term credentials that is not
    /// ours) allocating with what the home node issued.
    @Test("a TURN server resolving mesh credentials lets a client allocate with issued ones and refuses tampered ones")
    func turnServerAcceptsIssuedCredentials() async throws {
        relay.setMembers([home.identity.publicKeyBase64])
        var configuration = TURNServerConfiguration()
        configuration.bindAddresses = ["127.0.0.1"]
        configuration.port = 0
        configuration.tlsPort = nil
        configuration.credentialResolver = { [relay] in relay.password(forUsername: $0) }
        let server = TURNServer(configuration: configuration)
        try await server.start()
        let port = try #require(server.listeners.first { $0.transport == .udp }?.address.port)
        let issued = try #require(home.issue(peer: "alice", relayKey: relay.identity.publicKeyBase64, lifetime: 3600))
        #expect(try await Self.allocates(port: port, username: issued.username, password: issued.password))
        // The peer's name is part of what the password signs.
        let renamed = issued.username.replacingOccurrences(of: ":alice", with: ":mallory")
        #expect(try await !Self.allocates(port: port, username: renamed, password: issued.password))
        // So is the expiry: a later one needs another password.
        let parts = issued.username.split(separator: ":", maxSplits: 1)
        let extended = "\(Int(parts[0])! + 3600):\(parts[1])"
        #expect(try await !Self.allocates(port: port, username: extended, password: issued.password))
        #expect(try await !Self.allocates(port: port, username: issued.username, password: "x" + issued.password))
        await server.stop()
    }

    /// Whether libnice gets a relay candidate from the TURN server on 127.0.0.1:`port` with
    /// these credentials; decided once its gathering is done.
    static func allocates(port: Int, username: String, password: String) async throws -> Bool {
        let turn = ICEAgentConfiguration.TURNServer(host: "127.0.0.1", port: UInt16(port), username: username, password: password)
        let agent = try await ICEAgent(configuration: ICEAgentConfiguration(turnServers: [turn], localAddresses: ["127.0.0.1"]))
        let events = agent.events
        try await agent.gather()
        let relayed = try await withTimeout("gathering with TURN credentials") {
            var relayed = false
            for await event in events {
                switch event {
                case .localCandidate(let candidate) where candidate.kind == .relay: relayed = true
                case .gatheringDone: return relayed
                default: break
                }
            }
            return relayed
        }
        await agent.close()
        return relayed
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
