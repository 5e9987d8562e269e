import Foundation
import PostgresNIO
@testable import SignalingCluster
import Signaling
import Testing

/// `room_calls` (docs/cluster.md "Room calls across members"): which member hosts each room's
/// call. The calls themselves across three real members are `testnet/cluster`'s part.
@Suite("room_calls: the host of a room's call", .serialized, .timeLimit(.minutes(1)), .enabled(if: TestServer.available, TestServer.skipped))
struct RoomCallHostTests {
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
        _ = try await db.admin.query(PostgresQuery(unsafeSQL: "UPDATE room_calls SET since = now() - interval '1 minute'"), logger: db.logger)
        try await a.syncRoomCalls()
        try await b.syncRoomCalls()
        #expect(try await db.count("SELECT count(*)::int FROM room_calls") == 0)
        // Released: the next start claims the room again.
        #expect(try await b.roomCallHost(room: "#ops0", call: "c4", claim: true) == "b")
    }
}
