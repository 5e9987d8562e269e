import Foundation
import Logging
import PostgresNIO
import Signaling
import Synchronization

/// The hub's store in PostgreSQL, shared by every member of a cluster (docs/cluster.md): name
/// bindings (TOFU pins), devices, rooms, room history and the queued chat of every recipient.
///
/// Every write is one statement or one transaction and returns after PostgreSQL committed it
/// (`synchronous_commit` on, its default): the hub acknowledges chat only then, so a member
/// killed with -9 after an `ack` loses nothing. Chat and recipients' acks — the hot path — go
/// through one writer that batches them (``PostgresWriter``, group commit). Two members binding one new name at once are
/// settled by the primary key (`INSERT … ON CONFLICT DO NOTHING`, then the winner is read): a
/// name has one owner key in the whole cluster.
///
/// Bounds (``StoreLimits``): per-recipient, per-room and per-name bounds are checked in the
/// statement that inserts, as the SQLite store does. The node-wide totals (names, messages,
/// bytes) are checked against counts refreshed every few seconds (``refreshUsage()``): a
/// cluster-wide counter row would serialise every member's writes on one row lock.
public final class PostgresStore: SignalingStorage {
    let client: PostgresClient
    let logger: Logger
    public let limits: StoreLimits
    private let usage = Shared(Usage())
    private let keys = Mutex<[String: String]>([:])
    /// Chat messages and acks, batched (group commit); bounded by `limits.writeQueue`.
    let writer: PostgresWriter
    static let keyCacheLimit = 65_536

    /// A mutex the writer's callback can hold too.
    final class Shared<Value: Sendable>: Sendable {
        let mutex: Mutex<Value>
        init(_ value: Value) { mutex = Mutex(value) }
    }

    struct Usage {
        var names = 0
        var messages = 0
        var bytes = 0
    }

    /// `connect` opens the writer's own connection (``PostgresWriter``).
    init(client: PostgresClient, connect: @escaping @Sendable () async throws -> PostgresConnection, limits: StoreLimits,
         writerTimeout: Duration = PostgresWriter.defaultStatementTimeout, logger: Logger) {
        self.client = client
        self.limits = limits
        self.logger = logger
        let usage = usage
        writer = PostgresWriter(connect: connect, limits: limits, statementTimeout: writerTimeout, logger: logger) { stored, bytes, delivered in
            usage.mutex.withLock { $0.messages += stored - delivered; $0.bytes += bytes }
        }
    }

    /// Creates the tables (once, under an advisory lock: members start at the same time).
    func migrate() async throws(SignalingError) {
        try await guarded {
            try await client.withTransaction(logger: logger) { connection in
                // Any constant: all members take the same lock around the schema.
                try await connection.query("SELECT pg_advisory_xact_lock(7261017)", logger: logger)
                // The schema's statements run only when it changed: even a CREATE INDEX IF NOT
                // EXISTS or an ADD COLUMN IF NOT EXISTS that does nothing takes a strong lock on
                // its table, and a running member's heartbeat or expiry waiting on it while
                // holding another lock was a deadlock that stopped that member (PostgreSQL
                // picks one side to fail) — a member starting could stop another.
                let version = Self.schemaVersion
                var applied: String?
                for try await exists in try await connection.query("SELECT to_regclass('cluster_schema') IS NOT NULL", logger: logger)
                where try exists.decode(Bool.self) {
                    for try await row in try await connection.query("SELECT version FROM cluster_schema LIMIT 1", logger: logger) {
                        applied = try row.decode(String.self)
                    }
                }
                guard applied != version else { return }
                for statement in Self.schema {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query("CREATE TABLE IF NOT EXISTS cluster_schema (version text NOT NULL)", logger: logger)
                try await connection.query("DELETE FROM cluster_schema", logger: logger)
                try await connection.query("INSERT INTO cluster_schema (version) VALUES (\(version))", logger: logger)
            }
        }
        try await refreshUsage()
    }

    /// The schema's fingerprint (FNV-1a over its statements): a member of another version
    /// applies its statements once, every later start finds them applied.
    static let schemaVersion: String = {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in schema.joined(separator: ";\n").utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        return String(hash, radix: 16)
    }()

    static let schema = [
        "CREATE TABLE IF NOT EXISTS bindings (name text PRIMARY KEY, key text NOT NULL, created double precision NOT NULL, seen double precision NOT NULL)",
        """
        CREATE TABLE IF NOT EXISTS devices (name text NOT NULL, key text NOT NULL, endorsement text NOT NULL, added double precision NOT NULL,
                                            PRIMARY KEY (name, key))
        """,
        "CREATE TABLE IF NOT EXISTS rooms (room text PRIMARY KEY, owner text NOT NULL, rule text NOT NULL, created double precision NOT NULL)",
        "CREATE TABLE IF NOT EXISTS room_members (room text NOT NULL, member text NOT NULL, PRIMARY KEY (room, member))",
        "CREATE INDEX IF NOT EXISTS room_members_member ON room_members (member)",
        "CREATE TABLE IF NOT EXISTS room_invites (room text NOT NULL, name text NOT NULL, PRIMARY KEY (room, name))",
        """
        CREATE TABLE IF NOT EXISTS room_history (seq bigserial PRIMARY KEY, room text NOT NULL, sender text NOT NULL, id text NOT NULL,
                                                 text text NOT NULL, sent double precision NOT NULL, sig text, UNIQUE (room, sender, id))
        """,
        "CREATE INDEX IF NOT EXISTS room_history_room ON room_history (room, seq)",
        "CREATE TABLE IF NOT EXISTS remote_rooms (member text NOT NULL, room text NOT NULL, PRIMARY KEY (member, room))",
        """
        CREATE TABLE IF NOT EXISTS messages (seq bigserial PRIMARY KEY, sender text NOT NULL, id text NOT NULL, recipient text NOT NULL,
                                             frame text NOT NULL, created double precision NOT NULL, delivered boolean NOT NULL DEFAULT false,
                                             room text, UNIQUE (sender, id, recipient))
        """,
        "CREATE INDEX IF NOT EXISTS messages_pending ON messages (recipient, seq) WHERE NOT delivered",
        "CREATE INDEX IF NOT EXISTS messages_created ON messages (created)",
    ] + ClusterRouter.schema

    /// Re-reads the node-wide totals the bounds compare against.
    public func refreshUsage() async throws(SignalingError) {
        let rows = try await run("""
            SELECT (SELECT count(*) FROM bindings), count(*), coalesce(sum(octet_length(frame)), 0)::bigint FROM messages WHERE NOT delivered
            """)
        guard let row = rows.first else { return }
        let (names, messages, bytes) = try decode(row, (Int, Int, Int).self)
        usage.mutex.withLock { $0 = Usage(names: names, messages: messages, bytes: bytes) }
    }

    /// Stops taking chat writes (those queued are still written).
    public func close() async {
        writer.close()
    }

    // MARK: - Plumbing

    /// Runs `body`, turning whatever PostgreSQL throws into `internal-error` with its reason.
    func guarded<T>(_ body: () async throws -> T) async throws(SignalingError) -> T {
        do {
            return try await body()
        } catch let error as SignalingError {
            throw error
        } catch let error as PSQLError {
            throw SignalingError(.internalError, "cluster store: \(error.serverInfo?[.message] ?? String(reflecting: error))")
        } catch {
            throw SignalingError(.internalError, "cluster store: \(error)")
        }
    }

    func run(_ query: PostgresQuery) async throws(SignalingError) -> [PostgresRow] {
        try await guarded { try await Self.collect(client.query(query, logger: logger)) }
    }

    static func collect(_ rows: PostgresRowSequence) async throws -> [PostgresRow] {
        var all: [PostgresRow] = []
        for try await row in rows { all.append(row) }
        return all
    }

    func decode<each Column: PostgresDecodable>(_ row: PostgresRow, _ type: (repeat each Column).Type) throws(SignalingError) -> (repeat each Column) {
        do {
            return try row.decode(type)
        } catch {
            throw SignalingError(.internalError, "cluster store: a row did not decode: \(error)")
        }
    }

    static var now: Double { Date().timeIntervalSince1970 }

    // MARK: - Names and devices

    public func key(of name: String) async throws(SignalingError) -> String? {
        if let cached = keys.withLock({ $0[name] }) { return cached }
        guard let row = try await run("SELECT key FROM bindings WHERE name = \(name)").first else { return nil }
        let key = try decode(row, String.self)
        remember(name, key)
        return key
    }

    /// A name's binding changes only from none to a key (first use) and back when it expires
    /// (``prune(olderThan:now:)``, which empties the cache): a chat need not ask the database
    /// for its recipient's key every time. Bounded; emptied when full.
    private func remember(_ name: String, _ key: String) {
        keys.withLock { keys in
            if keys.count >= Self.keyCacheLimit { keys.removeAll(keepingCapacity: true) }
            keys[name] = key
        }
    }

    public func bind(name: String, key: String) async throws(SignalingError) -> String {
        let now = Self.now
        guard usage.mutex.withLock({ $0.names }) < limits.names else {
            if let row = try await run("UPDATE bindings SET seen = \(now) WHERE name = \(name) AND key = \(key) RETURNING key").first {
                return try decode(row, String.self)
            }
            if let bound = try await self.key(of: name) { return bound }
            throw SignalingError(.storeFull, "this node holds \(limits.names) names, the most it keeps; \(name.prefix(40)) was not bound")
        }
        // One statement, one commit: binds a new name, or marks the owner's login as a use and
        // returns the key that holds the name (another member's, if it bound it a moment before).
        guard let row = try await run("""
            INSERT INTO bindings AS b (name, key, created, seen) VALUES (\(name), \(key), \(now), \(now))
            ON CONFLICT (name) DO UPDATE SET seen = CASE WHEN b.key = excluded.key THEN excluded.seen ELSE b.seen END
            RETURNING key, (xmax = 0) AS inserted
            """).first else {
            throw SignalingError(.internalError, "the binding of \(name.prefix(40)) took no row")
        }
        let (bound, inserted) = try decode(row, (String, Bool).self)
        if inserted { usage.mutex.withLock { $0.names += 1 } }
        remember(name, bound)
        return bound
    }

    public func endorsement(name: String, key: String) async throws(SignalingError) -> String? {
        guard let row = try await run("SELECT endorsement FROM devices WHERE name = \(name) AND key = \(key)").first else { return nil }
        return try decode(row, String.self)
    }

    public func markSeen(name: String) async throws(SignalingError) {
        _ = try await run("UPDATE bindings SET seen = \(Self.now) WHERE name = \(name)")
    }

    public func devices(of name: String) async throws(SignalingError) -> [SignalingStore.Device] {
        var devices: [SignalingStore.Device] = []
        for row in try await run("SELECT key, endorsement, added FROM devices WHERE name = \(name) ORDER BY added") {
            let (key, endorsement, added) = try decode(row, (String, String, Double).self)
            devices.append(SignalingStore.Device(key: key, endorsement: endorsement, added: added))
        }
        return devices
    }

    public func addDevice(name: String, key: String, endorsement: String, limit: Int) async throws(SignalingError) -> Bool {
        let rows = try await run("""
            INSERT INTO devices (name, key, endorsement, added) SELECT \(name), \(key), \(endorsement), \(Self.now)
            WHERE (SELECT count(*) FROM devices WHERE name = \(name)) < \(limit) ON CONFLICT DO NOTHING RETURNING key
            """)
        if !rows.isEmpty { return true }
        if try await self.endorsement(name: name, key: key) != nil { return false }
        throw SignalingError(.storeFull, "\(name) has \(limit) linked devices, the most a name may have; remove one first")
    }

    public func removeDevice(name: String, key: String) async throws(SignalingError) -> Bool {
        try await !run("DELETE FROM devices WHERE name = \(name) AND key = \(key) RETURNING key").isEmpty
    }

    // MARK: - Rooms

    public func room(_ room: String) async throws(SignalingError) -> SignalingStore.Room? {
        guard let row = try await run("SELECT owner, rule FROM rooms WHERE room = \(room)").first else { return nil }
        let (owner, rule) = try decode(row, (String, String).self)
        return SignalingStore.Room(owner: owner, rule: RoomRule(rawValue: rule) ?? .open)
    }

    public func join(room: String, member: String, rule: RoomRule) async throws(SignalingError) -> Bool {
        var current = try await self.room(room)
        if current == nil {
            let created = try await run("""
                INSERT INTO rooms (room, owner, rule, created) SELECT \(room), \(member), \(rule.rawValue), \(Self.now)
                WHERE (SELECT count(*) FROM rooms) < \(limits.rooms) ON CONFLICT (room) DO NOTHING RETURNING owner
                """)
            current = try await self.room(room)
            guard current != nil || !created.isEmpty else {
                throw SignalingError(.storeFull, "this node has \(limits.rooms) rooms, the most it keeps; join an existing room")
            }
        }
        if let current, current.rule == .invite, current.owner != member {
            guard try await !run("SELECT 1 FROM room_invites WHERE room = \(room) AND name = \(member)").isEmpty else {
                throw SignalingError(.forbidden, "\(room) admits invited names only; ask its owner \(current.owner) for an invite")
            }
        }
        let rows = try await run("""
            INSERT INTO room_members (room, member) SELECT \(room), \(member)
            WHERE (SELECT count(*) FROM room_members WHERE room = \(room)) < \(limits.roomMembers)
              AND (SELECT count(*) FROM room_members WHERE member = \(member)) < \(limits.memberRooms)
            ON CONFLICT DO NOTHING RETURNING member
            """)
        if !rows.isEmpty { return true }
        if try await !run("SELECT 1 FROM room_members WHERE room = \(room) AND member = \(member)").isEmpty { return false }
        if try await rooms(of: member).count >= limits.memberRooms {
            throw SignalingError(.storeFull, "\(member) is in \(limits.memberRooms) rooms, the most this node allows; leave one first")
        }
        throw SignalingError(.storeFull, "\(room) has \(limits.roomMembers) members, the most this node allows")
    }

    public func leave(room: String, member: String) async throws(SignalingError) -> Bool {
        try await guarded {
            try await client.withTransaction(logger: logger) { connection in
                let removed = try await Self.collect(connection.query("DELETE FROM room_members WHERE room = \(room) AND member = \(member) RETURNING member", logger: logger))
                // A room whose last member left is forgotten with its invitations and history.
                let gone = try await Self.collect(connection.query("""
                    DELETE FROM rooms WHERE room = \(room) AND NOT EXISTS (SELECT 1 FROM room_members WHERE room = \(room)) RETURNING room
                    """, logger: logger))
                if !gone.isEmpty {
                    try await connection.query("DELETE FROM room_invites WHERE room = \(room)", logger: logger)
                    try await connection.query("DELETE FROM room_history WHERE room = \(room)", logger: logger)
                }
                return !removed.isEmpty
            }
        }
    }

    public func invite(room: String, name: String) async throws(SignalingError) -> Bool {
        let rows = try await run("""
            INSERT INTO room_invites (room, name) SELECT \(room), \(name) WHERE (SELECT count(*) FROM room_invites WHERE room = \(room)) < \(limits.roomMembers)
            ON CONFLICT DO NOTHING RETURNING name
            """)
        if !rows.isEmpty { return true }
        if try await !run("SELECT 1 FROM room_invites WHERE room = \(room) AND name = \(name)").isEmpty { return false }
        throw SignalingError(.storeFull, "\(room) has \(limits.roomMembers) invitations, the most this node keeps")
    }

    public func members(of room: String) async throws(SignalingError) -> [String] {
        var members: [String] = []
        for row in try await run("SELECT member FROM room_members WHERE room = \(room) ORDER BY member") { members.append(try decode(row, String.self)) }
        return members
    }

    public func rooms(of member: String) async throws(SignalingError) -> [String] {
        var rooms: [String] = []
        for row in try await run("SELECT room FROM room_members WHERE member = \(member) ORDER BY room") { rooms.append(try decode(row, String.self)) }
        return rooms
    }

    public func post(room: String, sender: String, id: String, text: String, sent: Double, sig: String?, recipients: [String],
                     frame: @escaping @Sendable (Int) -> String) async throws(SignalingError) -> SignalingStore.Posted {
        if let row = try await run("SELECT seq FROM room_history WHERE room = \(room) AND sender = \(sender) AND id = \(id)").first {
            let seq = try decode(row, Int.self)
            return SignalingStore.Posted(seq: seq, duplicate: true, fresh: [], frame: frame(seq))
        }
        try checkTotals(count: recipients.count, size: text.utf8.count)
        let limits = limits
        return try await guarded {
            try await client.withTransaction(logger: logger) { connection in
                guard let row = try await Self.collect(connection.query("""
                    INSERT INTO room_history (room, sender, id, text, sent, sig) VALUES (\(room), \(sender), \(id), \(text), \(sent), \(sig))
                    ON CONFLICT DO NOTHING RETURNING seq
                    """, logger: logger)).first else {
                    throw SignalingError(.internalError, "the history of \(room) took no row (posted at once at another member?)")
                }
                let seq = try row.decode(Int.self)
                let text = frame(seq)
                let fresh = try await Self.insertMessages(connection, sender: sender, id: id, recipients: recipients, frame: text, room: room,
                                                          limits: limits, logger: logger)
                try await connection.query("""
                    DELETE FROM room_history WHERE room = \(room)
                      AND seq <= (SELECT seq FROM room_history WHERE room = \(room) ORDER BY seq DESC LIMIT 1 OFFSET \(limits.roomHistory))
                    """, logger: logger)
                return SignalingStore.Posted(seq: seq, duplicate: false, fresh: fresh, frame: text)
            }
        }
    }

    public func history(of room: String, before: Int?, limit: Int, maxBytes: Int, now: Date) async throws(SignalingError) -> (entries: [HistoryEntry], more: Bool) {
        let rows = try await run("""
            SELECT seq, sender, id, text, sent, sig FROM room_history WHERE room = \(room) AND seq < \(before ?? Int.max)
              AND sent >= \(now.timeIntervalSince1970 - limits.historyAge) ORDER BY seq DESC LIMIT \(limit + 1)
            """)
        var entries: [HistoryEntry] = []
        var bytes = 0
        for row in rows.prefix(limit) {
            let (seq, sender, id, text, sent, sig) = try decode(row, (Int, String, String, String, Double, String?).self)
            bytes += text.utf8.count
            if bytes > maxBytes, !entries.isEmpty { return (entries.reversed(), true) }
            entries.append(HistoryEntry(seq: seq, from: sender, id: id, text: text, sent: sent, sig: sig))
        }
        return (entries.reversed(), rows.count > limit)
    }

    // MARK: - Rooms across nodes

    public func memberships(ofNode node: String) async throws(SignalingError) -> Int {
        guard let row = try await run("SELECT count(*) FROM room_members WHERE member LIKE \("%@" + node)").first else { return 0 }
        return try decode(row, Int.self)
    }

    public func addRemoteRoom(_ room: String, member: String) async throws(SignalingError) {
        let rows = try await run("""
            INSERT INTO remote_rooms (member, room) SELECT \(member), \(room) WHERE (SELECT count(*) FROM remote_rooms WHERE member = \(member)) < \(limits.memberRooms)
            ON CONFLICT DO NOTHING RETURNING room
            """)
        if rows.isEmpty, try await !isRemoteMember(member, of: room) {
            throw SignalingError(.storeFull, "\(member) is in \(limits.memberRooms) rooms at other nodes, the most this node keeps; leave one first")
        }
    }

    public func removeRemoteRoom(_ room: String, member: String) async throws(SignalingError) {
        _ = try await run("DELETE FROM remote_rooms WHERE member = \(member) AND room = \(room)")
    }

    public func isRemoteMember(_ member: String, of room: String) async throws(SignalingError) -> Bool {
        try await !run("SELECT 1 FROM remote_rooms WHERE member = \(member) AND room = \(room)").isEmpty
    }

    // MARK: - Messages

    /// The node-wide totals as last counted (``refreshUsage()``), plus what this member added since.
    private func checkTotals(count: Int, size: Int) throws(SignalingError) {
        let total = usage.mutex.withLock { $0 }
        if total.messages + count > limits.messages || total.bytes + count * size > limits.bytes {
            throw SignalingError(.storeFull, "the node's store is full (\(total.messages) undelivered messages, \(total.bytes) bytes; at most \(limits.messages) and \(limits.bytes)); nothing was stored, try again once recipients have read their messages")
        }
    }

    public func enqueue(sender: String, id: String, recipients requested: [String], frame: String, room: String?) async throws(SignalingError) -> [String] {
        var seen = Set<String>()
        let recipients = requested.filter { seen.insert($0).inserted }
        guard !recipients.isEmpty else { return [] }
        try checkTotals(count: recipients.count, size: frame.utf8.count)
        let limits = limits
        let stored = try await guarded {
            try await client.withConnection { connection in
                try await Self.insertMessages(connection, sender: sender, id: id, recipients: recipients, frame: frame, room: room,
                                              limits: limits, logger: logger)
            }
        }
        usage.mutex.withLock { $0.messages += stored.count; $0.bytes += stored.count * frame.utf8.count }
        return stored
    }

    /// One statement: a row per recipient whose queue has room; resends (same sender, id,
    /// recipient) are left alone. Throws `store-full` when no recipient took it and it was new.
    static func insertMessages(_ connection: PostgresConnection, sender: String, id: String, recipients: [String], frame: String,
                               room: String?, limits: StoreLimits, logger: Logger) async throws -> [String] {
        guard !recipients.isEmpty else { return [] }
        let size = frame.utf8.count
        let rows = try await collect(connection.query("""
            INSERT INTO messages (sender, id, recipient, frame, created, room)
            SELECT \(sender), \(id), r, \(frame), \(now), \(room) FROM unnest(\(recipients)::text[]) AS r
            WHERE (SELECT count(*) FROM messages m WHERE m.recipient = r AND NOT m.delivered) < \(limits.recipientMessages)
              AND (SELECT coalesce(sum(octet_length(m.frame)), 0) FROM messages m WHERE m.recipient = r AND NOT m.delivered) + \(size) <= \(limits.recipientBytes)
            ON CONFLICT DO NOTHING RETURNING recipient
            """, logger: logger))
        var stored: [String] = []
        for row in rows { stored.append(try row.decode(String.self)) }
        if stored.isEmpty {
            let known = try await collect(connection.query("SELECT 1 FROM messages WHERE sender = \(sender) AND id = \(id) LIMIT 1", logger: logger))
            if known.isEmpty {
                throw SignalingError(.storeFull, "\(recipients[0])'s queue is full (at most \(limits.recipientMessages) undelivered messages, \(limits.recipientBytes) bytes); nothing was stored, try again once recipients have read their messages")
            }
        }
        return stored
    }

    public func cachedKey(of name: String) -> String? {
        keys.withLock { $0[name] }
    }

    /// The duplicate check and the store of a chat message, in the writer's next batch
    /// (``PostgresWriter``): `then` runs once the batch committed, or with the error.
    public func enqueueChat(sender: String, id: String, recipients: [String], frame: String,
                            then: @escaping @Sendable (Result<SignalingStore.Enqueued, SignalingError>) -> Void) {
        do throws(SignalingError) {
            try checkTotals(count: Set(recipients).count, size: frame.utf8.count)
        } catch {
            return then(.failure(error))
        }
        writer.submit(.chat(PostgresWriter.Chat(sender: sender, id: id, recipients: recipients, frame: frame, then: then)))
    }

    /// ``enqueueChat(sender:id:recipients:frame:then:)``, awaited.
    public func enqueueChat(sender: String, id: String, recipients: [String], frame: String) async throws(SignalingError) -> SignalingStore.Enqueued {
        let result: Result<SignalingStore.Enqueued, SignalingError> = await withCheckedContinuation { continuation in
            enqueueChat(sender: sender, id: id, recipients: recipients, frame: frame) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }

    /// A recipient's ack, in the writer's next batch: `then` runs once it committed.
    public func markDelivered(recipient: String, sender: String, id: String, then: @escaping @Sendable (Result<Void, SignalingError>) -> Void) {
        writer.submit(.delivered(recipient: recipient, sender: sender, id: id, then: then))
    }

    public func hasMessage(sender: String, id: String) async throws(SignalingError) -> Bool {
        try await !run("SELECT 1 FROM messages WHERE sender = \(sender) AND id = \(id) LIMIT 1").isEmpty
    }

    public func pending(for recipient: String, limit: Int) async throws(SignalingError) -> [SignalingStore.Pending] {
        try await pendingRows(run("SELECT sender, id, frame FROM messages WHERE recipient = \(recipient) AND NOT delivered ORDER BY seq LIMIT \(limit)"))
    }

    /// The frame of one queued message, if it is still undelivered.
    func frame(sender: String, id: String, recipient: String) async throws(SignalingError) -> String? {
        guard let row = try await run("""
            SELECT frame FROM messages WHERE sender = \(sender) AND id = \(id) AND recipient = \(recipient) AND NOT delivered
            """).first else { return nil }
        return try decode(row, String.self)
    }

    private func pendingRows(_ rows: [PostgresRow]) throws(SignalingError) -> [SignalingStore.Pending] {
        var pending: [SignalingStore.Pending] = []
        for row in rows {
            let (sender, id, frame) = try decode(row, (String, String, String).self)
            pending.append(SignalingStore.Pending(sender: sender, id: id, frame: frame))
        }
        return pending
    }

    public func markDelivered(recipient: String, sender: String, id: String) async throws(SignalingError) {
        let result: Result<Void, SignalingError> = await withCheckedContinuation { continuation in
            markDelivered(recipient: recipient, sender: sender, id: id) { continuation.resume(returning: $0) }
        }
        try result.get()
    }

    public func pending(forNode node: String, limit: Int) async throws(SignalingError) -> [SignalingStore.Pending] {
        try await pendingRows(run("SELECT sender, id, frame FROM messages WHERE NOT delivered AND recipient LIKE \("%@" + node) ORDER BY seq LIMIT \(limit)"))
    }

    public func markDelivered(sender: String, id: String, node: String) async throws(SignalingError) {
        _ = try await run("""
            UPDATE messages SET delivered = true, frame = '' WHERE sender = \(sender) AND id = \(id) AND recipient LIKE \("%@" + node) AND NOT delivered
            """)
    }

    public func prune(olderThan age: Double, now: Date) async throws(SignalingError) {
        let time = now.timeIntervalSince1970
        let unused = time - limits.nameExpiry
        let limits = limits
        try await guarded {
            try await client.withTransaction(logger: logger) { connection in
                for statement: PostgresQuery in [
                    "DELETE FROM messages WHERE (delivered AND created < \(time - age)) OR created < \(time - limits.expiry)",
                    "DELETE FROM room_members WHERE member IN (SELECT name FROM bindings WHERE seen < \(unused))",
                    "DELETE FROM rooms WHERE NOT EXISTS (SELECT 1 FROM room_members WHERE room_members.room = rooms.room)",
                    "DELETE FROM room_invites WHERE NOT EXISTS (SELECT 1 FROM rooms WHERE rooms.room = room_invites.room)",
                    "DELETE FROM room_history WHERE sent < \(time - limits.historyAge)",
                    "DELETE FROM room_history WHERE NOT EXISTS (SELECT 1 FROM rooms WHERE rooms.room = room_history.room)",
                    """
                    DELETE FROM bindings WHERE seen < \(unused)
                      AND NOT EXISTS (SELECT 1 FROM room_members WHERE member = bindings.name)
                      AND NOT EXISTS (SELECT 1 FROM rooms WHERE owner = bindings.name)
                      AND NOT EXISTS (SELECT 1 FROM messages WHERE recipient = bindings.name AND NOT delivered)
                    """,
                    "DELETE FROM devices WHERE NOT EXISTS (SELECT 1 FROM bindings WHERE bindings.name = devices.name)",
                    "DELETE FROM remote_rooms WHERE NOT EXISTS (SELECT 1 FROM bindings WHERE bindings.name = remote_rooms.member)",
                    """
                    DELETE FROM messages WHERE seq IN (SELECT seq FROM messages WHERE delivered ORDER BY seq DESC OFFSET \(limits.deliveredKept))
                    """,
                ] {
                    try await connection.query(statement, logger: logger)
                }
            }
        }
        keys.withLock { $0.removeAll() }
        try await refreshUsage()
    }
}
