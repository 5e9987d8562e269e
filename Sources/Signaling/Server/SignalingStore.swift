import Foundation
import Logging
import SQLiteNIO
import Synchronization

/// What a node keeps across restarts, in one SQLite file (`<data-dir>/signaling.sqlite`):
/// name bindings (TOFU at the node), room membership, and every chat message per recipient
/// until the recipient acknowledges it (docs/protocol.md, "Delivery guarantees").
///
/// Every write goes through one writer that commits concurrent writes together (group commit,
/// ``StoreWriter``) and answers each only once its transaction is on disk: a `kill -9` after an
/// `ack` loses nothing. Every table is bounded by `limits` (``StoreLimits``);
/// a write that would pass a bound is refused as a whole with `store-full`, so what is stored
/// already stays intact. The directory is 0700 and the files 0600: chat is nobody else's to read.
public final class SignalingStore: Sendable {
    private let db: SQLiteConnection
    let writer: StoreWriter
    /// Name bindings read so far (name → key): a chat to a name asks for its key every time.
    /// A binding changes only in ``bind(name:key:)`` (a new name) and ``prune(olderThan:now:)``
    /// (a name forgotten), which keep this cache right; bounded by `keyCacheLimit`, emptied when full.
    private let keys = Mutex(KeyCache())
    private struct KeyCache {
        var keys: [String: String] = [:]
        /// Bumped when bindings are forgotten: a read that began before does not fill the cache.
        var generation = 0
    }
    static let keyCacheLimit = 65_536
    public let path: String
    public let limits: StoreLimits

    /// A stored message waiting for its recipient.
    public struct Pending: Sendable, Equatable {
        public var sender: String
        public var id: String
        public var frame: String

        public init(sender: String, id: String, frame: String) {
            self.sender = sender
            self.id = id
            self.frame = frame
        }
    }

    private init(db: SQLiteConnection, path: String, limits: StoreLimits) throws(SignalingError) {
        self.db = db
        // After the migration: the writer's connection finds the tables made.
        self.writer = try StoreWriter(path: path, queueLimit: limits.writeQueue, walCap: limits.walBytes)
        self.path = path
        self.limits = limits
    }

    /// Opens (and creates) the store in `directory`, private to this user: the directory 0700,
    /// the database 0600 (SQLite gives its `-wal` and `-shm` files the database's mode).
    public static func open(directory: String, limits: StoreLimits = StoreLimits(), logger: Logger) async throws(SignalingError) -> SignalingStore {
        let path = directory + "/signaling.sqlite"
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            // An existing directory keeps the mode it was made with: tighten it when it is this
            // user's own and not a shared one (a sticky directory such as /tmp stays as it is;
            // the files below are private either way).
            let attributes = try FileManager.default.attributesOfItem(atPath: directory)
            let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue ?? 0
            let owner = (attributes[.ownerAccountID] as? NSNumber)?.uint32Value
            if owner == geteuid(), mode & 0o1000 == 0, mode & 0o077 != 0 {
                try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: directory)
            }
            if !FileManager.default.fileExists(atPath: path) {
                guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
                    throw SignalingError(.internalError, "cannot create \(path)")
                }
            }
            for file in [path, path + "-wal", path + "-shm"] where FileManager.default.fileExists(atPath: file) {
                try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file)
            }
        } catch let error as SignalingError {
            throw error
        } catch {
            throw SignalingError(.internalError, "cannot make data directory \(directory) private: \(error.localizedDescription)")
        }
        do {
            let db = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
            do {
                try await migrate(db)
            } catch {
                try? await db.close()
                throw error
            }
            return try SignalingStore(db: db, path: path, limits: limits)
        } catch let error as SignalingError {
            throw error
        } catch {
            throw SignalingError(.internalError, "cannot open \(path): \(error)")
        }
    }

    private static func migrate(_ db: SQLiteConnection) async throws {
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
        // Undelivered rows only: what a login reads, and what the writer's ledger is loaded from
        // (``StoreLedger``). Small (messages in flight), so an insert and an ack touch pages
        // that stay in the cache; delivered rows, kept to recognise resends, are not in it.
        _ = try await db.query("CREATE INDEX IF NOT EXISTS messages_undelivered ON messages (recipient, seq) WHERE delivered = 0")
        _ = try await db.query("DROP INDEX IF EXISTS messages_pending")
        try await migrateLimits(db)
        try await migrateDevices(db)
    }

    /// The tables of rooms and of usage (version 2 of the store). `usage` counts the names
    /// (scope `names`), kept exact by triggers in the same transaction as each write and
    /// recounted at every open. Undelivered messages are counted by the writer in memory
    /// (``StoreLedger``, issue 17): the triggers that counted them in `usage` (five statements
    /// per chat message) are dropped here.
    private static func migrateLimits(_ db: SQLiteConnection) async throws {
        let columns = try await db.query("PRAGMA table_info(messages)").compactMap { $0.column("name")?.string }
        if !columns.contains("room") {
            _ = try await db.query("ALTER TABLE messages ADD COLUMN room TEXT")
        }
        _ = try await db.query("CREATE INDEX IF NOT EXISTS messages_created ON messages (created)")
        // When a name last logged in (or a node last linked), for the expiry of unused names.
        let bindingColumns = try await db.query("PRAGMA table_info(bindings)").compactMap { $0.column("name")?.string }
        if !bindingColumns.contains("seen") {
            _ = try await db.query("ALTER TABLE bindings ADD COLUMN seen REAL")
            _ = try await db.query("UPDATE bindings SET seen = created")
        }
        _ = try await db.query("""
            CREATE TABLE IF NOT EXISTS rooms (room TEXT PRIMARY KEY, owner TEXT NOT NULL, rule TEXT NOT NULL, created REAL NOT NULL)
            """)
        _ = try await db.query("CREATE TABLE IF NOT EXISTS room_invites (room TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (room, name))")
        _ = try await db.query("CREATE INDEX IF NOT EXISTS room_members_member ON room_members (member)")
        _ = try await db.query("CREATE TABLE IF NOT EXISTS usage (scope TEXT PRIMARY KEY, count INTEGER NOT NULL, bytes INTEGER NOT NULL)")
        for trigger in ["usage_added", "usage_delivered", "usage_removed"] {
            _ = try await db.query("DROP TRIGGER IF EXISTS \(trigger)")
        }
        // The number of names, kept like the rest of `usage` (scope `names`; its bytes unused).
        _ = try await db.query("""
            CREATE TRIGGER IF NOT EXISTS usage_name_added AFTER INSERT ON bindings BEGIN
              UPDATE usage SET count = count + 1 WHERE scope = 'names';
            END
            """)
        _ = try await db.query("""
            CREATE TRIGGER IF NOT EXISTS usage_name_removed AFTER DELETE ON bindings BEGIN
              UPDATE usage SET count = count - 1 WHERE scope = 'names';
            END
            """)
        // Recount: cheap at open, and it repairs any drift (a store written by an older version).
        _ = try await db.query("DELETE FROM usage")
        _ = try await db.query("INSERT INTO usage (scope, count, bytes) SELECT 'names', count(*), 0 FROM bindings")
        // Version 3: rooms' history and rooms at other nodes (SignalingStore+RoomHistory.swift).
        try await migrateHistory(db)
    }

    /// A store dropped without `close()` (a node that failed half-way, a test that threw) still
    /// closes its database: the close keeps the connection alive until it has run.
    deinit {
        if !db.isClosed { _ = db.close() }
    }

    /// Transactions the writer committed so far (group commit: fewer than the writes).
    public var commitCount: Int { writer.commitCount }

    /// Closes the database; safe to call more than once.
    public func close() async {
        await writer.close()
        guard !db.isClosed else { return }
        try? await db.close()
    }

    func run(_ sql: String, _ binds: [SQLiteData] = []) async throws(SignalingError) -> [SQLiteRow] {
        do {
            return try await db.query(sql, binds)
        } catch {
            throw SignalingError(.internalError, "storage failed: \(error)")
        }
    }

    // MARK: - Name bindings

    /// The key bound to `name`, if any.
    public func key(of name: String) async throws(SignalingError) -> String? {
        let (cached, generation) = keys.withLock { ($0.keys[name], $0.generation) }
        if let cached { return cached }
        guard let key = try await storedKey(of: name) else { return nil }
        remember(name: name, key: key, generation: generation)
        return key
    }

    /// Caches a binding read or made when the cache was at `generation`, unless bindings were
    /// forgotten since (the read may be older than the forgetting).
    private func remember(name: String, key: String, generation: Int) {
        keys.withLock { cache in
            guard cache.generation == generation else { return }
            if cache.keys.count >= Self.keyCacheLimit { cache.keys.removeAll(keepingCapacity: true) }
            cache.keys[name] = key
        }
    }

    /// The key bound to `name` when the cache has it; nil means "ask ``key(of:)``", not "unbound".
    /// A caller on an actor checks this first and awaits nothing in the common case.
    public func cachedKey(of name: String) -> String? {
        keys.withLock { $0.keys[name] }
    }

    private func storedKey(of name: String) async throws(SignalingError) -> String? {
        try await run("SELECT key FROM bindings WHERE name = ?", [.text(name)]).first?.column("key")?.string
    }

    /// ``storedKey(of:)`` inside a write.
    private static func storedKey(of name: String, _ db: StoreConnection) throws(SignalingError) -> String? {
        try db.run("SELECT key FROM bindings WHERE name = ?", [.text(name)]).first?.column("key")?.string
    }

    /// Binds `name` to `key` on first use. Returns the key the name is bound to afterwards:
    /// `key` itself, or the other key that already holds the name. Throws `store-full` for a
    /// new name when the store holds `limits.names` already. A login with the bound key marks
    /// the name as used now (unused names expire, see ``prune(olderThan:now:)``).
    public func bind(name: String, key: String) async throws(SignalingError) -> String {
        // The binding goes into the key cache too: the chat fast path takes a chat only to a
        // name whose key is cached (SignalingHub+FastChat.swift), and a login is where a name
        // shows up first.
        let generation = keys.withLock { $0.generation }
        let bound = try await writer.write { [self] db throws(SignalingError) -> String in
            let now = Date().timeIntervalSince1970
            if let bound = try Self.storedKey(of: name, db) {
                if bound == key { try db.run("UPDATE bindings SET seen = ? WHERE name = ?", [.float(now), .text(name)]) }
                return bound
            }
            try db.run("""
                INSERT INTO bindings (name, key, created, seen) SELECT ?, ?, ?, ? WHERE (SELECT count FROM usage WHERE scope = 'names') < ?
                ON CONFLICT (name) DO NOTHING
                """, [.text(name), .text(key), .float(now), .float(now), .integer(limits.names)])
            guard let bound = try Self.storedKey(of: name, db) else {
                throw SignalingError(.storeFull, "this node holds \(limits.names) names, the most it keeps; \(name.prefix(40)) was not bound")
            }
            return bound
        }
        remember(name: name, key: bound, generation: generation)
        return bound
    }

    // MARK: - Rooms

    /// A room's owner (the name that created it) and rule.
    public struct Room: Sendable, Equatable {
        public var owner: String
        public var rule: RoomRule

        public init(owner: String, rule: RoomRule) {
            self.owner = owner
            self.rule = rule
        }
    }

    /// The owner and rule of `room`, nil when it does not exist (it never had a member, or
    /// all left).
    public func room(_ room: String) async throws(SignalingError) -> Room? {
        guard let row = try await run("SELECT owner, rule FROM rooms WHERE room = ?", [.text(room)]).first,
              let owner = row.column("owner")?.string else { return nil }
        return Room(owner: owner, rule: row.column("rule")?.string.flatMap(RoomRule.init(rawValue:)) ?? .open)
    }

    /// ``room(_:)`` inside a write.
    private static func room(_ room: String, _ db: StoreConnection) throws(SignalingError) -> Room? {
        guard let row = try db.run("SELECT owner, rule FROM rooms WHERE room = ?", [.text(room)]).first,
              let owner = row.column("owner")?.string else { return nil }
        return Room(owner: owner, rule: row.column("rule")?.string.flatMap(RoomRule.init(rawValue:)) ?? .open)
    }

    /// Adds a member; returns false when it already was one. A room that does not exist is
    /// created with `member` as its owner and `rule`. Throws `forbidden` for an `invite` room
    /// that did not invite `member`, `store-full` when the room, the member's rooms or the
    /// node's rooms are at their limit.
    public func join(room: String, member: String, rule: RoomRule = .open) async throws(SignalingError) -> Bool {
        try await writer.write { [self] db throws(SignalingError) -> Bool in
            var current = try Self.room(room, db)
            if current == nil {
                // A store from before rooms had owners: its rooms are open and get their next joiner as owner.
                let created = try db.run("""
                    INSERT INTO rooms (room, owner, rule, created) SELECT ?, ?, ?, ? WHERE (SELECT count(*) FROM rooms) < ?
                    ON CONFLICT (room) DO NOTHING RETURNING owner
                    """, [.text(room), .text(member), .text(rule.rawValue), .float(Date().timeIntervalSince1970), .integer(limits.rooms)])
                current = try Self.room(room, db)
                guard current != nil || !created.isEmpty else {
                    throw SignalingError(.storeFull, "this node has \(limits.rooms) rooms, the most it keeps; join an existing room")
                }
            }
            if let current, current.rule == .invite, current.owner != member {
                let invited = try !db.run("SELECT 1 AS x FROM room_invites WHERE room = ? AND name = ?", [.text(room), .text(member)]).isEmpty
                guard invited else {
                    throw SignalingError(.forbidden, "\(room) admits invited names only; ask its owner \(current.owner) for an invite")
                }
            }
            // The bounds are checked in the statement that inserts, so two joins at once cannot pass them.
            let rows = try db.run("""
                INSERT INTO room_members (room, member) SELECT ?, ?
                WHERE (SELECT count(*) FROM room_members WHERE room = ?) < ? AND (SELECT count(*) FROM room_members WHERE member = ?) < ?
                ON CONFLICT DO NOTHING RETURNING member
                """, [.text(room), .text(member), .text(room), .integer(limits.roomMembers), .text(member), .integer(limits.memberRooms)])
            if !rows.isEmpty { return true }
            if try !db.run("SELECT 1 AS x FROM room_members WHERE room = ? AND member = ?", [.text(room), .text(member)]).isEmpty {
                return false
            }
            if try Self.rooms(of: member, db).count >= limits.memberRooms {
                throw SignalingError(.storeFull, "\(member) is in \(limits.memberRooms) rooms, the most this node allows; leave one first")
            }
            throw SignalingError(.storeFull, "\(room) has \(limits.roomMembers) members, the most this node allows")
        }
    }

    /// Removes a member; returns false when it was not one. A room whose last member left is
    /// forgotten with its invitations: the next to join creates it anew.
    public func leave(room: String, member: String) async throws(SignalingError) -> Bool {
        try await writer.write { db throws(SignalingError) -> Bool in
            let rows = try db.run("DELETE FROM room_members WHERE room = ? AND member = ? RETURNING member", [.text(room), .text(member)])
            try db.run("DELETE FROM rooms WHERE room = ? AND NOT EXISTS (SELECT 1 FROM room_members WHERE room = ?)", [.text(room), .text(room)])
            try db.run("DELETE FROM room_invites WHERE room = ? AND NOT EXISTS (SELECT 1 FROM rooms WHERE room = ?)", [.text(room), .text(room)])
            // A room forgotten takes its history with it: the next to create it starts afresh.
            try db.run("DELETE FROM room_history WHERE room = ? AND NOT EXISTS (SELECT 1 FROM rooms WHERE room = ?)", [.text(room), .text(room)])
            return !rows.isEmpty
        }
    }

    /// The owner lets `name` join `room`; returns false when it was invited already. Throws
    /// `store-full` when the room has as many invitations as it may have members.
    public func invite(room: String, name: String) async throws(SignalingError) -> Bool {
        try await writer.write { [self] db throws(SignalingError) -> Bool in
            let rows = try db.run("""
                INSERT INTO room_invites (room, name) SELECT ?, ? WHERE (SELECT count(*) FROM room_invites WHERE room = ?) < ?
                ON CONFLICT DO NOTHING RETURNING name
                """, [.text(room), .text(name), .text(room), .integer(limits.roomMembers)])
            if !rows.isEmpty { return true }
            if try !db.run("SELECT 1 AS x FROM room_invites WHERE room = ? AND name = ?", [.text(room), .text(name)]).isEmpty {
                return false
            }
            throw SignalingError(.storeFull, "\(room) has \(limits.roomMembers) invitations, the most this node keeps")
        }
    }

    /// The members of a room, sorted by name.
    public func members(of room: String) async throws(SignalingError) -> [String] {
        try await run("SELECT member FROM room_members WHERE room = ? ORDER BY member", [.text(room)]).compactMap { $0.column("member")?.string }
    }

    /// The rooms `member` belongs to.
    public func rooms(of member: String) async throws(SignalingError) -> [String] {
        try await run("SELECT room FROM room_members WHERE member = ? ORDER BY room", [.text(member)]).compactMap { $0.column("room")?.string }
    }

    /// ``rooms(of:)`` inside a write.
    private static func rooms(of member: String, _ db: StoreConnection) throws(SignalingError) -> [String] {
        try db.run("SELECT room FROM room_members WHERE member = ? ORDER BY room", [.text(member)]).compactMap { $0.column("room")?.string }
    }

    // MARK: - Messages

    /// Stores one message for each recipient. Rows that exist already (a resend of the same
    /// sender and id) are left alone; returns the recipients that are new, which are the ones
    /// to deliver to now.
    ///
    /// The limits are checked first, against the writer's ledger of undelivered messages as it
    /// was before the message: the whole message is refused with `store-full` when it would take
    /// the store or the `room` over its bounds, or a single recipient over theirs. For a room
    /// message, a member whose own queue is full is left out (that member's mailbox is full),
    /// unless every recipient is.
    public func enqueue(sender: String, id: String, recipients requested: [String], frame: String,
                        room: String? = nil) async throws(SignalingError) -> [String] {
        try await writer.write { [self] db throws(SignalingError) -> [String] in
            try insertMessages(db, sender: sender, id: id, recipients: requested, frame: frame, room: room)
        }
    }

    /// What a chat message's write did (``enqueueChat(sender:id:recipients:frame:then:)``).
    public enum Enqueued: Sendable, Equatable {
        /// `sender` sent a message with this id before (to anyone): nothing was stored again.
        case duplicate
        /// Stored; `fresh` are the recipients to deliver to now.
        case stored(fresh: [String])
    }

    /// ``hasMessage(sender:id:)`` then ``enqueue(sender:id:recipients:frame:room:)`` in one write
    /// (two prepared statements, no read outside the writer): `then` runs on the store's answering
    /// thread once the message is durable, or with the error (`store-full`, `store-busy`).
    public func enqueueChat(sender: String, id: String, recipients: [String], frame: String,
                     then: @escaping @Sendable (Result<Enqueued, SignalingError>) -> Void) {
        writer.submit({ [self] db throws(SignalingError) -> Enqueued in
            var sent = false
            try db.each(.sentBefore, .text(sender), .text(id)) { _ in sent = true }
            if sent { return .duplicate }
            return .stored(fresh: try insertMessages(db, sender: sender, id: id, recipients: recipients, frame: frame, room: nil))
        }, then: then)
    }

    /// ``enqueueChat(sender:id:recipients:frame:then:)``, awaited.
    public func enqueueChat(sender: String, id: String, recipients: [String], frame: String) async throws(SignalingError) -> Enqueued {
        let result: Result<Enqueued, SignalingError> = await withCheckedContinuation { continuation in
            enqueueChat(sender: sender, id: id, recipients: recipients, frame: frame) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }

    /// ``enqueue(sender:id:recipients:frame:room:)`` inside a write that is open already.
    func insertMessages(_ db: StoreConnection, sender: String, id: String, recipients requested: [String], frame: String,
                        room: String?) throws(SignalingError) -> [String] {
        // A chat to a peer has one recipient: nothing to deduplicate (no set, no new array).
        var seen = Set<String>()
        let recipients = requested.count == 1 ? requested : requested.filter { seen.insert($0).inserted }
        guard !recipients.isEmpty else { return [] }
        let size = frame.utf8.count
        let now = Date().timeIntervalSince1970
        return try db.withLedger { ledger throws(SignalingError) -> [String] in
            // The checks the insert's guard made in SQL before, in the same order, against
            // the counts before this message (a resend counts as a new one would).
            let open = recipients.filter { recipient in
                let used = ledger.usage(recipient: recipient)
                return used.messages + 1 <= limits.recipientMessages && used.bytes + size <= limits.recipientBytes
            }
            if let full = fullness(ledger, recipients: recipients, open: open.count, room: room, size: size) {
                throw SignalingError(.storeFull, full + "; nothing was stored, try again once recipients have read their messages")
            }
            var stored: [String] = []
            for recipient in open {
                let inserted = try db.execute(.insertMessage, .text(sender), .text(id), .text(recipient), .text(frame), .real(now), room.map { .text($0) } ?? .null)
                guard inserted > 0 else { continue }
                ledger.add(StoreLedger.Key(recipient: recipient, sender: sender, id: id),
                           StoreLedger.Entry(seq: db.lastInsertRowID, bytes: size, room: room))
                stored.append(recipient)
            }
            return stored
        }
    }

    /// Which limit a message of `size` bytes to `recipients` would pass (`open` of them have
    /// room in their own queue), or nil when none.
    private func fullness(_ ledger: StoreLedger, recipients: [String], open: Int, room: String?, size: Int) -> String? {
        let n = recipients.count
        let total = ledger.total
        if total.messages + n > limits.messages || total.bytes + n * size > limits.bytes {
            return "the node's store is full (\(total.messages) undelivered messages, \(total.bytes) bytes; at most \(limits.messages) and \(limits.bytes))"
        }
        if let room {
            let used = ledger.usage(room)
            if used.messages + n > limits.roomMessages || used.bytes + n * size > limits.roomBytes {
                return "\(room) has \(used.messages) undelivered messages (\(used.bytes) bytes; at most \(limits.roomMessages) and \(limits.roomBytes))"
            }
        }
        guard open == 0, let first = recipients.first else { return nil }
        return "\(first)'s queue is full (at most \(limits.recipientMessages) undelivered messages, \(limits.recipientBytes) bytes)"
    }

    /// Bytes of every stored frame, delivered or not (delivered rows keep none).
    public func storedBytes() async throws(SignalingError) -> Int {
        try await run("SELECT coalesce(sum(length(CAST(frame AS BLOB))), 0) AS n FROM messages").first?.column("n")?.integer ?? 0
    }

    /// Undelivered messages and their bytes: in total (`scope` nil), for `r:NAME` or for `#room`.
    /// Read from the writer's ledger, in a write: what committed before it, and what writes queued
    /// earlier in its batch did.
    public func usage(_ scope: String? = nil) async throws(SignalingError) -> (messages: Int, bytes: Int) {
        try await writer.write { db throws(SignalingError) -> (messages: Int, bytes: Int) in
            let usage = try db.withLedger { ledger throws(SignalingError) in ledger.usage(scope) }
            return (usage.messages, usage.bytes)
        }
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
        let result: Result<Void, SignalingError> = await withCheckedContinuation { continuation in
            markDelivered(recipient: recipient, sender: sender, id: id) { continuation.resume(returning: $0) }
        }
        try result.get()
    }

    /// ``markDelivered(recipient:sender:id:)`` without waiting: `then` runs on the store's answering
    /// thread once it committed, or with the error.
    public func markDelivered(recipient: String, sender: String, id: String, then: @escaping @Sendable (Result<Void, SignalingError>) -> Void) {
        writer.submit({ db throws(SignalingError) -> Void in
            try db.withLedger { ledger throws(SignalingError) in
                // Not in the ledger: delivered already (or never stored), nothing to write.
                let key = StoreLedger.Key(recipient: recipient, sender: sender, id: id)
                guard let entry = ledger.entry(key) else { return }
                // A delivered row only deduplicates resends: its frame is not needed any more.
                try db.execute(.markDelivered, .int(entry.seq))
                ledger.remove(key)
            }
        }, then: then)
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
        try await writer.write { db throws(SignalingError) -> Void in
            try db.withLedger { ledger throws(SignalingError) in
                var handed: [(seq: Int64, recipient: String)] = []
                try db.each("SELECT seq, recipient FROM messages WHERE sender = ? AND id = ? AND substr(recipient, -?) = ? AND delivered = 0",
                            .text(sender), .text(id), .int(Int64(node.count + 1)), .text("@" + node)) { row in
                    if let recipient = row.text(1) { handed.append((row.int64(0), recipient)) }
                }
                for (seq, recipient) in handed {
                    try db.execute(.markDelivered, .int(seq))
                    ledger.remove(StoreLedger.Key(recipient: recipient, sender: sender, id: id))
                }
            }
        }
    }

    /// Forgets delivered messages older than `age` seconds (their ids then stop deduplicating)
    /// and undelivered ones older than `limits.expiry` (their recipient never came for them).
    /// Also forgets what names unused for `limits.nameExpiry` (not logged in, or linked, for
    /// that long) hold: their room memberships (a room left empty goes with its invitations),
    /// then the names themselves unless they still own a room or have messages waiting.
    public func prune(olderThan age: Double, now: Date = Date()) async throws(SignalingError) {
        defer { keys.withLock { $0.keys.removeAll(); $0.generation += 1 } }
        try await writer.write { [self] db throws(SignalingError) -> Void in
            let time = now.timeIntervalSince1970
            let unused: SQLiteData = .float(time - limits.nameExpiry)
            try db.run("DELETE FROM messages WHERE (delivered != 0 AND created < ?) OR created < ?",
                              [.float(time - age), .float(time - limits.expiry)])
            try db.run("DELETE FROM room_members WHERE member IN (SELECT name FROM bindings WHERE coalesce(seen, created) < ?)", [unused])
            try pruneRemoteMembers(db, unused: unused)
            try db.run("DELETE FROM rooms WHERE NOT EXISTS (SELECT 1 FROM room_members WHERE room_members.room = rooms.room)")
            try db.run("DELETE FROM room_invites WHERE NOT EXISTS (SELECT 1 FROM rooms WHERE rooms.room = room_invites.room)")
            try pruneHistory(db, now: time)
            try db.run("""
                DELETE FROM bindings WHERE coalesce(seen, created) < ?
                  AND NOT EXISTS (SELECT 1 FROM room_members WHERE member = bindings.name)
                  AND NOT EXISTS (SELECT 1 FROM rooms WHERE owner = bindings.name)
                  AND NOT EXISTS (SELECT 1 FROM messages WHERE recipient = bindings.name AND delivered = 0)
                """, [unused])
            // Undelivered messages may have expired above: the ledger is read again.
            db.dropLedger()
            // A forgotten name's endorsed devices go with it (SignalingStore+Devices.swift).
            try db.run("DELETE FROM devices WHERE NOT EXISTS (SELECT 1 FROM bindings WHERE bindings.name = devices.name)")
            // Delivered rows (ids kept to recognise resends) are bounded too: a pair of names that
            // chat and acknowledge at the rate limit would otherwise add rows for `age` seconds.
            let delivered = try db.run("SELECT count(*) AS n FROM messages WHERE delivered != 0").first?.column("n")?.integer ?? 0
            if delivered > limits.deliveredKept {
                try db.run("DELETE FROM messages WHERE seq IN (SELECT seq FROM messages WHERE delivered != 0 ORDER BY seq LIMIT ?)",
                                  [.integer(delivered - limits.deliveredKept)])
            }
        }
    }
}
