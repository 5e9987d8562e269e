import Foundation
import Logging
import SQLiteNIO

/// What a node keeps across restarts, in one SQLite file (`<data-dir>/signaling.sqlite`):
/// name bindings (TOFU at the node), room membership, and every chat message per recipient
/// until the recipient acknowledges it (docs/protocol.md, "Delivery guarantees").
///
/// Each write is one SQL statement, so each is atomic and durable before the node answers: a
/// `kill -9` after an `ack` loses nothing.
public final class SignalingStore: Sendable {
    private let db: SQLiteConnection
    public let path: String

    /// A stored message waiting for its recipient.
    public struct Pending: Sendable, Equatable {
        public var sender: String
        public var id: String
        public var frame: String
    }

    private init(db: SQLiteConnection, path: String) {
        self.db = db
        self.path = path
    }

    /// Opens (and creates) the store in `directory`.
    public static func open(directory: String, logger: Logger) async throws(SignalingError) -> SignalingStore {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw SignalingError(.internalError, "cannot create data directory \(directory): \(error.localizedDescription)")
        }
        let path = directory + "/signaling.sqlite"
        do {
            let db = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
            let store = SignalingStore(db: db, path: path)
            try await store.migrate()
            return store
        } catch let error as SignalingError {
            throw error
        } catch {
            throw SignalingError(.internalError, "cannot open \(path): \(error)")
        }
    }

    private func migrate() async throws {
        // WAL with synchronous=FULL: every commit is on disk before the node answers.
        _ = try await db.query("PRAGMA journal_mode=WAL")
        _ = try await db.query("PRAGMA synchronous=FULL")
        _ = try await db.query("PRAGMA busy_timeout=5000")
        _ = try await db.query("""
            CREATE TABLE IF NOT EXISTS bindings (name TEXT PRIMARY KEY, key TEXT NOT NULL, created REAL NOT NULL)
            """)
        _ = try await db.query("""
            CREATE TABLE IF NOT EXISTS room_members (room TEXT NOT NULL, member TEXT NOT NULL, PRIMARY KEY (room, member))
            """)
        _ = try await db.query("""
            CREATE TABLE IF NOT EXISTS messages (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                sender TEXT NOT NULL, id TEXT NOT NULL, recipient TEXT NOT NULL,
                frame TEXT NOT NULL, created REAL NOT NULL, delivered INTEGER NOT NULL DEFAULT 0,
                UNIQUE (sender, id, recipient))
            """)
        _ = try await db.query("CREATE INDEX IF NOT EXISTS messages_pending ON messages (recipient, delivered, seq)")
    }

    /// A store dropped without `close()` (a node that failed half-way, a test that threw) still
    /// closes its database: the close keeps the connection alive until it has run.
    deinit {
        if !db.isClosed { _ = db.close() }
    }

    /// Closes the database; safe to call more than once.
    public func close() async {
        guard !db.isClosed else { return }
        try? await db.close()
    }

    private func run(_ sql: String, _ binds: [SQLiteData] = []) async throws(SignalingError) -> [SQLiteRow] {
        do {
            return try await db.query(sql, binds)
        } catch {
            throw SignalingError(.internalError, "storage failed: \(error)")
        }
    }

    // MARK: - Name bindings

    /// The key bound to `name`, if any.
    public func key(of name: String) async throws(SignalingError) -> String? {
        try await run("SELECT key FROM bindings WHERE name = ?", [.text(name)]).first?.column("key")?.string
    }

    /// Binds `name` to `key` on first use. Returns the key the name is bound to afterwards:
    /// `key` itself, or the other key that already holds the name.
    public func bind(name: String, key: String) async throws(SignalingError) -> String {
        _ = try await run("INSERT INTO bindings (name, key, created) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
                          [.text(name), .text(key), .float(Date().timeIntervalSince1970)])
        return try await self.key(of: name) ?? key
    }

    // MARK: - Rooms

    /// Adds a member; returns false when it already was one.
    public func join(room: String, member: String) async throws(SignalingError) -> Bool {
        let rows = try await run("INSERT INTO room_members (room, member) VALUES (?, ?) ON CONFLICT DO NOTHING RETURNING member",
                                 [.text(room), .text(member)])
        return !rows.isEmpty
    }

    /// Removes a member; returns false when it was not one.
    public func leave(room: String, member: String) async throws(SignalingError) -> Bool {
        let rows = try await run("DELETE FROM room_members WHERE room = ? AND member = ? RETURNING member", [.text(room), .text(member)])
        return !rows.isEmpty
    }

    /// The members of a room, sorted by name.
    public func members(of room: String) async throws(SignalingError) -> [String] {
        try await run("SELECT member FROM room_members WHERE room = ? ORDER BY member", [.text(room)]).compactMap { $0.column("member")?.string }
    }

    /// The rooms `member` belongs to.
    public func rooms(of member: String) async throws(SignalingError) -> [String] {
        try await run("SELECT room FROM room_members WHERE member = ? ORDER BY room", [.text(member)]).compactMap { $0.column("room")?.string }
    }

    // MARK: - Messages

    /// Stores one message for each recipient in one statement. Rows that exist already (a
    /// resend of the same sender and id) are left alone; returns the recipients that are new,
    /// which are the ones to deliver to now.
    public func enqueue(sender: String, id: String, recipients: [String], frame: String) async throws(SignalingError) -> [String] {
        guard !recipients.isEmpty else { return [] }
        let now = Date().timeIntervalSince1970
        let values = Array(repeating: "(?, ?, ?, ?, ?)", count: recipients.count).joined(separator: ", ")
        var binds: [SQLiteData] = []
        for recipient in recipients {
            binds += [.text(sender), .text(id), .text(recipient), .text(frame), .float(now)]
        }
        let rows = try await run("INSERT INTO messages (sender, id, recipient, frame, created) VALUES \(values) ON CONFLICT DO NOTHING RETURNING recipient", binds)
        return rows.compactMap { $0.column("recipient")?.string }
    }

    /// Whether `sender` already sent a message with `id` (to anyone).
    public func hasMessage(sender: String, id: String) async throws(SignalingError) -> Bool {
        try await !run("SELECT 1 AS x FROM messages WHERE sender = ? AND id = ? LIMIT 1", [.text(sender), .text(id)]).isEmpty
    }

    /// Messages `recipient` has not acknowledged, oldest first.
    public func pending(for recipient: String, limit: Int = 1000) async throws(SignalingError) -> [Pending] {
        let rows = try await run("SELECT sender, id, frame FROM messages WHERE recipient = ? AND delivered = 0 ORDER BY seq LIMIT ?",
                                 [.text(recipient), .integer(limit)])
        return rows.compactMap { row in
            guard let sender = row.column("sender")?.string, let id = row.column("id")?.string, let frame = row.column("frame")?.string else { return nil }
            return Pending(sender: sender, id: id, frame: frame)
        }
    }

    /// The recipient acknowledged a message: it is not delivered again.
    public func markDelivered(recipient: String, sender: String, id: String) async throws(SignalingError) {
        _ = try await run("UPDATE messages SET delivered = 1 WHERE recipient = ? AND sender = ? AND id = ?", [.text(recipient), .text(sender), .text(id)])
    }

    /// Messages waiting to be handed to another node (recipients `name@node`), oldest first.
    public func pending(forNode node: String, limit: Int = 10_000) async throws(SignalingError) -> [Pending] {
        let rows = try await run("SELECT sender, id, frame, recipient FROM messages WHERE delivered = 0 AND substr(recipient, -?) = ? ORDER BY seq LIMIT ?",
                                 [.integer(node.count + 1), .text("@" + node), .integer(limit)])
        return rows.compactMap { row in
            guard let sender = row.column("sender")?.string, let id = row.column("id")?.string, let frame = row.column("frame")?.string else { return nil }
            return Pending(sender: sender, id: id, frame: frame)
        }
    }

    /// The other node took over a message (stored it for its recipient) or refused it for good.
    public func markDelivered(sender: String, id: String, node: String) async throws(SignalingError) {
        _ = try await run("UPDATE messages SET delivered = 1 WHERE sender = ? AND id = ? AND substr(recipient, -?) = ?",
                          [.text(sender), .text(id), .integer(node.count + 1), .text("@" + node)])
    }

    /// Forgets delivered messages older than `age` seconds (their ids then stop deduplicating).
    public func prune(olderThan age: Double) async throws(SignalingError) {
        _ = try await run("DELETE FROM messages WHERE delivered = 1 AND created < ?", [.float(Date().timeIntervalSince1970 - age)])
    }
}
