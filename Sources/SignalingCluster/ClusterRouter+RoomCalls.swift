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

    /// A host whose heartbeat is this late and which holds no session with PostgreSQL is taken
    /// for dead at once by a member that would hand it a request (docs/cluster.md "Room calls
    /// across members" item 6): two missed beats, so that a live member is never taken so.
    static let hostLate = 2.0

    public func roomCallHost(room: String, call: String, claim: Bool) async throws(SignalingError) -> String? {
        let host = try await readHost(room: room, call: call, claim: claim)
        guard let host, host != member, try await hostIsGone(host) else { return host }
        // Reaped now (its calls went with it): the request finds no call, or claims the room.
        return try await readHost(room: room, call: call, claim: claim)
    }

    public func roomCallHosts(ofRoomMember name: String) async throws(SignalingError) -> [String: String] {
        let hosts = try await readHosts(ofRoomMember: name)
        // As for one room's host (``roomCallHost(room:call:claim:)``): a dead host is reaped now
        // (its calls go with it), or, while its heartbeat is fresh, refused `unavailable`,
        // rather than handed messages it cannot answer until the 10 s reaper runs.
        var reaped = false
        for host in Set(hosts.values) where host != member {
            if try await hostIsGone(host) { reaped = true }
        }
        return reaped ? try await readHosts(ofRoomMember: name) : hosts
    }

    private func readHosts(ofRoomMember name: String) async throws(SignalingError) -> [String: String] {
        var hosts: [String: String] = [:]
        for row in try await store.run("SELECT c.room, c.member FROM room_calls c JOIN room_members m ON m.room = c.room WHERE m.member = \(name)") {
            let (room, host) = try store.decode(row, (String, String).self)
            hosts[room] = host
        }
        return hosts
    }

    /// Whether `host`, a member that hosts a room call, is dead: it holds no session with
    /// PostgreSQL (a member killed with -9 loses its connections at once when it runs on the
    /// database's machine or its TCP connections are reset; a live member holds its listener's
    /// for as long as it runs, and stops when it loses it). Once its heartbeat is also
    /// ``hostLate`` it is reaped here as the heartbeat's reaper would reap it 10 s after it:
    /// its presence and calls deleted, every member told `gone`. Until then a request for its
    /// call is refused `unavailable` rather than handed to a member that cannot answer. A host
    /// with no `cluster_members` row (not yet written) is taken for alive.
    private func hostIsGone(_ host: String) async throws(SignalingError) -> Bool {
        let application = PostgresCluster.applicationName(of: host)
        let rows = try await store.run("""
            WITH gone AS (DELETE FROM cluster_members WHERE member = \(host) AND seen < now() - make_interval(secs => \(Self.hostLate))
                          AND NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name = \(application))
                          RETURNING member),
                 cleared AS (DELETE FROM presence WHERE member IN (SELECT member FROM gone)),
                 calls AS (DELETE FROM room_calls WHERE member IN (SELECT member FROM gone)),
                 told AS (SELECT pg_notify(\(Self.clusterChannel), 'gone ' || member) FROM gone)
            SELECT (SELECT count(*) FROM told)::int,
                   NOT EXISTS (SELECT 1 FROM cluster_members WHERE member = \(host))
                   OR EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name = \(application))
            """)
        guard let row = rows.first else { return false }
        let (reaped, alive) = try store.decode(row, (Int, Bool).self)
        if reaped > 0 {
            logger.notice("cluster: a room call's host holds no session with the database; reaped it", metadata: ["member": "\(host)"])
            return true
        }
        guard alive else {
            throw SignalingError(.unavailable, "member \(host), which hosts this room call, holds no connection to the database (it stopped?); it is taken for dead \(Int(Self.hostLate)) s after its last heartbeat: send again then")
        }
        return false
    }

    private func readHost(room: String, call: String, claim: Bool) async throws(SignalingError) -> String? {
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
