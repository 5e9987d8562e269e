import Foundation
import PostgresNIO
@testable import SignalingCluster
import Signaling
import Testing
import TestSupport

/// `room_calls` (docs/cluster.md "Room calls across members"): which member hosts each room's
/// call. The calls themselves across three real members are `testnet/cluster`'s part.
@Suite("room_calls: the host of a room's call", .serialized, .timeLimit(.minutes(1)), .enabled(if: TestServer.available, TestServer.skipped))
struct RoomCallHostTests {
    /// Member b's sessions with the database (a member's carry `application_name` `meshnode-member NAME`).
    static let memberBSessions = "SELECT count(*)::int FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'meshnode-member b'"

    @Test("two members starting in one room at once: one host, both are told it; a claim its host never started is released after the grace")
    func claimAndRelease() async throws {
        let db = try await TestDatabase.make()
        let hub = SignalingHub(store: db.store, logger: db.logger, iceServers: { _, _ in [] })
        let a = db.cluster.router(member: "a", hub: hub)
        let b = db.cluster.router(member: "b", hub: hub)
        for round in 0..<5 {
            let room = "#ops\(round)"
            async let first = a.roomCallHost(room: room, call: "c1", claim: true)
            async let second = b.roomCallHost(room: room, call: "c2", claim: true)
            let hosts = try await [first, second]
            #expect(hosts[0] != nil && hosts[0] == hosts[1], "one host for \(room): \(hosts)")
            #expect(try await b.roomCallHost(room: room, call: "c3", claim: false) == hosts[0])
        }
        #expect(try await a.roomCallHost(room: "#quiet", call: "c", claim: false) == nil)
        #expect(try await db.count("SELECT count(*)::int FROM room_calls") == 5)

        // The hub hosts no call: its sync keeps fresh claims (a start may be on its way) and
        // drops those older than the grace.
        try await a.syncRoomCalls()
        try await b.syncRoomCalls()
        #expect(try await db.count("SELECT count(*)::int FROM room_calls") == 5)
        try await db.execute("UPDATE room_calls SET since = now() - interval '1 minute'")
        try await a.syncRoomCalls()
        try await b.syncRoomCalls()
        #expect(try await db.count("SELECT count(*)::int FROM room_calls") == 0)
        // Released: the next start claims the room again.
        #expect(try await b.roomCallHost(room: "#ops0", call: "c4", claim: true) == "b")
    }

    @Test("a host with no session left is reaped by the member that would hand it a request: the room is free at once, not after the 10 s reaper")
    func deadHostReapedAtOnce() async throws {
        let db = try await TestDatabase.make()
        let hub = SignalingHub(store: db.store, logger: db.logger, iceServers: { _, _ in [] })
        let a = db.cluster.router(member: "a", hub: hub)
        // Member b: a database connection of its own, its sessions named as a member's are.
        let other = try await PostgresCluster.connect(db.location, limits: StoreLimits(), member: "b", logger: db.logger)
        let b = other.router(member: "b", hub: hub)
        #expect(try await b.roomCallHost(room: "#ops", call: "c1", claim: true) == "b")
        try await db.execute("INSERT INTO cluster_members (member, seen, started) VALUES ('b', now() - interval '5 seconds', now())")
        #expect(try await db.count(Self.memberBSessions) > 0)

        // Late heartbeat, sessions alive (a member slowed down): still the host.
        #expect(try await a.roomCallHost(room: "#ops", call: "c2", claim: true) == "b")
        #expect(try await db.count("SELECT count(*)::int FROM cluster_members WHERE member = 'b'") == 1)

        // b dies: its connections close (as a kill -9 resets them).
        other.close()
        _ = try await waitFor("b's sessions gone") { try await db.count(Self.memberBSessions) == 0 ? true : nil }
        // Heartbeat still fresh: refused `unavailable` at once instead of waiting on a dead host.
        try await db.execute("UPDATE cluster_members SET seen = now() WHERE member = 'b'")
        await #expect(throws: SignalingError.self) { _ = try await a.roomCallHost(room: "#ops", call: "c2", claim: false) }
        // Two beats late: reaped now, and a start takes the room.
        try await db.execute("UPDATE cluster_members SET seen = now() - interval '3 seconds' WHERE member = 'b'")
        #expect(try await a.roomCallHost(room: "#ops", call: "c3", claim: true) == "a")
        #expect(try await db.count("SELECT count(*)::int FROM cluster_members WHERE member = 'b'") == 0)
        #expect(try await db.count("SELECT count(*)::int FROM room_calls WHERE member = 'b'") == 0)
    }

    @Test("the hosts of a name's rooms' calls (a participant's failover): a dead host is reaped at once and not returned")
    func deadHostLeftOutOfAMembersHosts() async throws {
        let db = try await TestDatabase.make()
        let hub = SignalingHub(store: db.store, logger: db.logger, iceServers: { _, _ in [] })
        let a = db.cluster.router(member: "a", hub: hub)
        let other = try await PostgresCluster.connect(db.location, limits: StoreLimits(), member: "b", logger: db.logger)
        let b = other.router(member: "b", hub: hub)
        #expect(try await b.roomCallHost(room: "#ops", call: "c1", claim: true) == "b")
        #expect(try await a.roomCallHost(room: "#dev", call: "c2", claim: true) == "a")
        for sql in ["INSERT INTO room_members (room, member) VALUES ('#ops', 'carol'), ('#dev', 'carol')",
                    "INSERT INTO cluster_members (member, seen, started) VALUES ('b', now(), now())"] {
            try await db.execute(sql)
        }
        #expect(try await a.roomCallHosts(ofRoomMember: "carol") == ["#ops": "b", "#dev": "a"])

        // b dies; while its heartbeat is fresh the lookup is refused rather than routed to it.
        other.close()
        _ = try await waitFor("b's sessions gone") { try await db.count(Self.memberBSessions) == 0 ? true : nil }
        await #expect(throws: SignalingError.self) { _ = try await a.roomCallHosts(ofRoomMember: "carol") }
        // Two beats late: reaped by the lookup itself, and its call is no longer a route.
        try await db.execute("UPDATE cluster_members SET seen = now() - interval '3 seconds' WHERE member = 'b'")
        #expect(try await a.roomCallHosts(ofRoomMember: "carol") == ["#dev": "a"])
        #expect(try await db.count("SELECT count(*)::int FROM cluster_members WHERE member = 'b'") == 0)
    }
}
