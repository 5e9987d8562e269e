import Foundation
import PostgresNIO
import Signaling

/// Which member hosts each room's call (docs/cluster.md "Room calls across members"): the
/// table `room_calls`, one row per room with a call, written by its host. A member claims a
/// room when its client starts a call there and no member hosts one; every second each member
/// writes the calls it hosts and drops its rows of calls that ended. A dead member's rows go
/// when it is reaped (with its presence), a restarted member's at its start: no call outlives
/// its host by more than the reaping time.
extension ClusterRouter {
    static let roomCallSchema = [
        "CREATE TABLE IF NOT EXISTS room_calls (room text PRIMARY KEY, member text NOT NULL, call text NOT NULL, since timestamptz NOT NULL DEFAULT now())",
        "CREATE INDEX IF NOT EXISTS room_calls_member ON room_calls (member)",
    ]

    /// A claimed room whose call did not start (the host refused the start) is released by the
    /// next sync after this long; a call that did start is in the hub's table by then.
    static let claimGrace = 5.0

    public func roomCallHost(room: String, call: String, claim: Bool) async throws(SignalingError) -> String? {
        if claim {
            // One statement: the inserted row, or the row that was there (the CTE's SELECT sees
            // the table before the INSERT). The primary key settles two members at once.
            let rows = try await store.run("""
                WITH claimed AS (INSERT INTO room_calls (room, member, call) VALUES (\(room), \(member), \(call))
                                 ON CONFLICT (room) DO NOTHING RETURNING member)
                SELECT member FROM claimed UNION ALL SELECT member FROM room_calls WHERE room = \(room) LIMIT 1
                """)
            if let row = rows.first { return try store.decode(row, String.self) }
            // Empty only when another member's claim committed while this one waited on it
            // (the statement's snapshot predates it): read the winner.
        }
        let rows = try await store.run("SELECT member FROM room_calls WHERE room = \(room)")
        guard let row = rows.first else { return nil }
        return try store.decode(row, String.self)
    }

    /// Writes the calls this member hosts now and drops its rows of calls that ended (older
    /// than ``claimGrace``: a claim whose start is still on its way stays). Run with each
    /// heartbeat.
    func syncRoomCalls() async throws(SignalingError) {
        let hosted = await hub.hostedRoomCalls
        let pairs = Array(hosted)
        let rooms = pairs.map(\.key), calls = pairs.map(\.value)
        _ = try await store.guarded {
            try await client.query("""
                WITH kept AS (INSERT INTO room_calls (room, member, call)
                              SELECT r, \(member), c FROM unnest(\(rooms)::text[], \(calls)::text[]) AS t(r, c)
                              ON CONFLICT (room) DO UPDATE SET call = excluded.call WHERE room_calls.member = excluded.member)
                DELETE FROM room_calls WHERE member = \(member) AND room <> ALL(\(rooms)::text[])
                    AND since < now() - make_interval(secs => \(Self.claimGrace))
                """, logger: logger)
        }
    }

    /// After a member was reaped (its rows went with it): the calls this member remembers from
    /// states of a host that no longer hosts them are forgotten.
    func forgetEndedRoomCalls() async throws(SignalingError) {
        let remembered = await hub.rememberedClusterRoomCalls
        guard !remembered.isEmpty else { return }
        var hosted = Set<String>()
        for row in try await store.run("SELECT room FROM room_calls WHERE room = ANY(\(remembered)::text[])") {
            hosted.insert(try store.decode(row, String.self))
        }
        await hub.forgetClusterRoomCalls(keeping: hosted)
    }
}
