import Foundation
import SQLiteNIO

/// A room's history (docs/protocol.md "Room history") and the rooms at other nodes that local
/// names joined ("Rooms across nodes"). The hosting node keeps one row per room message, bounded
/// per room by count (`limits.roomHistory`, the oldest go first) and age (`limits.historyAge`);
/// members read it in pages by sequence number.
extension SignalingStore {
    /// The tables of version 3 of the store: history and remote memberships.
    static func migrateHistory(_ db: SQLiteConnection) async throws {
        _ = try await db.query("""
            CREATE TABLE IF NOT EXISTS room_history (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                room TEXT NOT NULL, sender TEXT NOT NULL, id TEXT NOT NULL, text TEXT NOT NULL, sent REAL NOT NULL,
                UNIQUE (room, sender, id))
            """)
        // The sender's node's signature, for a peer of another node (ChatBody.sig).
        let columns = try await db.query("PRAGMA table_info(room_history)").compactMap { $0.column("name")?.string }
        if !columns.contains("sig") { _ = try await db.query("ALTER TABLE room_history ADD COLUMN sig TEXT") }
        _ = try await db.query("CREATE INDEX IF NOT EXISTS room_history_room ON room_history (room, seq)")
        _ = try await db.query("CREATE INDEX IF NOT EXISTS room_history_sent ON room_history (sent)")
        // Local names in rooms hosted by other nodes (`#room@host:port`), as the hosting node
        // confirmed them: a room message or event that node pushes is delivered only to these.
        _ = try await db.query("CREATE TABLE IF NOT EXISTS remote_rooms (member TEXT NOT NULL, room TEXT NOT NULL, PRIMARY KEY (member, room))")
    }

    /// What ``post(room:sender:id:text:sent:recipients:frame:)`` did.
    public struct Posted: Sendable, Equatable {
        /// The message's place in the history (the earlier one's, for a resend).
        public var seq: Int
        /// A resend of an id this sender already posted to the room: nothing was stored again.
        public var duplicate: Bool
        /// The local recipients whose queue took it: the ones to deliver to now.
        public var fresh: [String]
        /// The frame stored for them.
        public var frame: String

        public init(seq: Int, duplicate: Bool, fresh: [String], frame: String) {
            self.seq = seq
            self.duplicate = duplicate
            self.fresh = fresh
            self.frame = frame
        }
    }

    /// Appends a room message to the room's history and, in the same transaction, queues it for
    /// `recipients` (the local members but the sender) as ``enqueue(sender:id:recipients:frame:room:)``
    /// does: the sender's `ack` means both are on disk. `frame` makes the delivered frame from
    /// the message's sequence number. Throws what the queue throws (`store-full`, nothing kept).
    /// The history keeps the room's newest `limits.roomHistory` messages.
    public func post(room: String, sender: String, id: String, text: String, sent: Double, sig: String? = nil, recipients: [String],
                     frame: @escaping @Sendable (Int) -> String) async throws(SignalingError) -> Posted {
        try await writer.write { [self] db throws(SignalingError) -> Posted in
            if let seq = try db.run("SELECT seq FROM room_history WHERE room = ? AND sender = ? AND id = ?",
                                       [.text(room), .text(sender), .text(id)]).first?.column("seq")?.integer {
                return Posted(seq: seq, duplicate: true, fresh: [], frame: frame(seq))
            }
            guard let seq = try db.run("INSERT INTO room_history (room, sender, id, text, sent, sig) VALUES (?, ?, ?, ?, ?, ?) RETURNING seq",
                                          [.text(room), .text(sender), .text(id), .text(text), .float(sent), sig.map { .text($0) } ?? .null])
                    .first?.column("seq")?.integer else {
                throw SignalingError(.internalError, "the history of \(room) took no row")
            }
            let text = frame(seq)
            let fresh: [String]
            do throws(SignalingError) {
                fresh = try insertMessages(db, sender: sender, id: id, recipients: recipients, frame: text, room: room)
            } catch {
                // The queue refused it: the history must not keep what the sender was told failed.
                try db.run("DELETE FROM room_history WHERE seq = ?", [.integer(seq)])
                throw error
            }
            // Beyond the bound the oldest go (an index range scan on (room, seq)).
            try db.run("""
                DELETE FROM room_history WHERE room = ? AND seq <= (SELECT seq FROM room_history WHERE room = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)
                """, [.text(room), .text(room), .integer(limits.roomHistory)])
            return Posted(seq: seq, duplicate: false, fresh: fresh, frame: text)
        }
    }

    /// A page of `room`'s history: up to `limit` messages older than `before` (the newest when
    /// nil) and younger than `limits.historyAge`, oldest first, stopping early once the texts
    /// pass `maxBytes`; `more` says whether older ones remain.
    public func history(of room: String, before: Int?, limit: Int, maxBytes: Int = HistoryBody.maxPageBytes,
                        now: Date = Date()) async throws(SignalingError) -> (entries: [HistoryEntry], more: Bool) {
        let rows = try await run("""
            SELECT seq, sender, id, text, sent, sig FROM room_history WHERE room = ? AND seq < ? AND sent >= ? ORDER BY seq DESC LIMIT ?
            """, [.text(room), .integer(before ?? Int.max), .float(now.timeIntervalSince1970 - limits.historyAge), .integer(limit + 1)])
        var entries: [HistoryEntry] = []
        var bytes = 0
        for row in rows.prefix(limit) {
            guard let seq = row.column("seq")?.integer, let sender = row.column("sender")?.string, let id = row.column("id")?.string,
                  let text = row.column("text")?.string, let sent = row.column("sent")?.double else { continue }
            bytes += text.utf8.count
            if bytes > maxBytes, !entries.isEmpty { return (entries.reversed(), true) }
            entries.append(HistoryEntry(seq: seq, from: sender, id: id, text: text, sent: sent, sig: row.column("sig")?.string))
        }
        return (entries.reversed(), rows.count > limit)
    }

    /// Messages kept in `room`'s history (of any age).
    public func historyCount(of room: String) async throws(SignalingError) -> Int {
        try await run("SELECT count(*) AS n FROM room_history WHERE room = ?", [.text(room)]).first?.column("n")?.integer ?? 0
    }

    /// Inside ``prune(olderThan:now:)``'s write: history older than `limits.historyAge`, and the
    /// history of rooms that were forgotten.
    func pruneHistory(_ db: StoreConnection, now time: Double) throws(SignalingError) {
        try db.run("DELETE FROM room_history WHERE sent < ?", [.float(time - limits.historyAge)])
        try db.run("DELETE FROM room_history WHERE NOT EXISTS (SELECT 1 FROM rooms WHERE rooms.room = room_history.room)")
        try db.run("DELETE FROM remote_rooms WHERE NOT EXISTS (SELECT 1 FROM bindings WHERE bindings.name = remote_rooms.member)")
    }

    // MARK: - Rooms across nodes

    /// Inside ``prune(olderThan:now:)``'s write: memberships of peers of other nodes (`name@node`)
    /// whose node has not linked since `unused` (its binding `@node` was not seen): such names
    /// have no binding of their own to expire with.
    func pruneRemoteMembers(_ db: StoreConnection, unused: SQLiteData) throws(SignalingError) {
        try db.run("""
            DELETE FROM room_members WHERE instr(member, '@') > 0 AND NOT EXISTS (
              SELECT 1 FROM bindings WHERE name = '@' || substr(member, instr(member, '@') + 1) AND coalesce(seen, created) >= ?)
            """, [unused])
    }

    /// Memberships held here by the names of `node` (`name@node`), in all rooms.
    public func memberships(ofNode node: String) async throws(SignalingError) -> Int {
        try await run("SELECT count(*) AS n FROM room_members WHERE substr(member, -?) = ?",
                      [.integer(node.count + 1), .text("@" + node)]).first?.column("n")?.integer ?? 0
    }

    /// The hosting node confirmed that local `member` joined `room` (`#name@host:port`).
    /// Throws `store-full` beyond `limits.memberRooms` such rooms for one name.
    public func addRemoteRoom(_ room: String, member: String) async throws(SignalingError) {
        try await writer.write { [self] db throws(SignalingError) -> Void in
            let rows = try db.run("""
                INSERT INTO remote_rooms (member, room) SELECT ?, ? WHERE (SELECT count(*) FROM remote_rooms WHERE member = ?) < ?
                ON CONFLICT DO NOTHING RETURNING room
                """, [.text(member), .text(room), .text(member), .integer(limits.memberRooms)])
            if rows.isEmpty, try !Self.isRemoteMember(db, member, of: room) {
                throw SignalingError(.storeFull, "\(member) is in \(limits.memberRooms) rooms at other nodes, the most this node keeps; leave one first")
            }
        }
    }

    /// `member` left `room` at its hosting node.
    public func removeRemoteRoom(_ room: String, member: String) async throws(SignalingError) {
        try await writer.write { db throws(SignalingError) -> Void in
            try db.run("DELETE FROM remote_rooms WHERE member = ? AND room = ?", [.text(member), .text(room)])
        }
    }

    /// Whether local `member` is in `room` at another node, as that node confirmed.
    public func isRemoteMember(_ member: String, of room: String) async throws(SignalingError) -> Bool {
        try await !run("SELECT 1 AS x FROM remote_rooms WHERE member = ? AND room = ?", [.text(member), .text(room)]).isEmpty
    }

    /// ``isRemoteMember(_:of:)`` inside a write.
    static func isRemoteMember(_ db: StoreConnection, _ member: String, of room: String) throws(SignalingError) -> Bool {
        try !db.run("SELECT 1 AS x FROM remote_rooms WHERE member = ? AND room = ?", [.text(member), .text(room)]).isEmpty
    }

    /// The rooms at other nodes `member` is in.
    public func remoteRooms(of member: String) async throws(SignalingError) -> [String] {
        try await run("SELECT room FROM remote_rooms WHERE member = ? ORDER BY room", [.text(member)]).compactMap { $0.column("room")?.string }
    }
}
