import Foundation
import Logging
import Testing
import STUN
@testable import TURNServer

/// Quotas count identities, not usernames (issue 15, finding 8): a TURN REST username
/// `EXPIRY:NAME` changes at every login, its NAME does not.
@Suite struct QuotaIdentityTests {
    func shared(_ configure: (inout TURNServerConfiguration) -> Void) -> TURNShared {
        var config = TURNServerConfiguration()
        configure(&config)
        return TURNShared(config: config, relayIPv4: nil, relayIPv6: nil, logger: Logger(label: "test"))
    }

    @Test("the identity of a REST username is its NAME; a bare expiry is the empty name; other usernames have none")
    func restIdentity() {
        #expect(TURNRESTCredentials.identity(ofUsername: "1700000000:bob") == "bob")
        #expect(TURNRESTCredentials.identity(ofUsername: "1700000600:bob") == "bob")
        #expect(TURNRESTCredentials.identity(ofUsername: "1700000000:issuer:bob") == "issuer:bob")
        #expect(TURNRESTCredentials.identity(ofUsername: "1700000000") == "")
        #expect(TURNRESTCredentials.identity(ofUsername: "alice") == nil)
        #expect(TURNRESTCredentials.identity(ofUsername: "x1:bob") == nil)
    }

    @Test("two logins of one name have one identity; static users are themselves; resolver usernames lose their expiry")
    func credentialIdentity() {
        let server = shared {
            $0.restSecret = "s3cret"
            $0.users = ["alice": "wonderland", "1:odd": "static"]
            $0.credentialResolver = { $0.hasSuffix(":mesh:dave") ? "meshpass" : nil }
        }
        let now = Date()
        let first = TURNRESTCredentials(secret: "s3cret", id: "bob", lifetime: 600, now: now)
        let second = TURNRESTCredentials(secret: "s3cret", id: "bob", lifetime: 3600, now: now)
        #expect(first.username != second.username)
        #expect(server.credential(for: first.username)?.identity == "bob")
        #expect(server.credential(for: second.username)?.identity == "bob")
        #expect(server.credential(for: second.username)?.password == second.password)
        #expect(server.credential(for: "alice")?.identity == "alice")
        #expect(server.credential(for: "1:odd")?.identity == "1:odd", "a static user is matched first, by its whole name")
        #expect(server.credential(for: "\(Int(now.timeIntervalSince1970) + 60):mesh:dave")?.identity == "mesh:dave")
        #expect(server.credential(for: "1000:bob") == nil, "expired")
    }

    @Test("reservations count in the quota by identity: a second login of a name shares its quota")
    func reservationsShareQuota() {
        let quota = AllocationQuota(userLimit: 1, totalLimit: 10)
        let pool = RelayPortPool(range: 40_000...40_009)
        var first = AllocationReservation(username: "600:bob", identity: "bob", quota: quota, ports: pool)
        #expect(first.acquireQuota() == nil)
        var second = AllocationReservation(username: "900:bob", identity: "bob", quota: quota, ports: pool)
        #expect(second.acquireQuota() == "user bob holds its maximum of 1 allocations")
        var other = AllocationReservation(username: "600:carol", identity: "carol", quota: quota, ports: pool)
        #expect(other.acquireQuota() == nil)
    }
}
