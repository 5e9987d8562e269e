import SQLiteNIO

/// What the store's limits are checked against, kept in memory by the writer (issue 17): the
/// undelivered messages, each by (recipient, sender, id) with its row, size and room, and their
/// counts and bytes in total, per recipient and per room.
///
/// Before, SQL triggers kept a `usage` table exact in every transaction and each insert read it
/// in a guard: five statements and a hot row rewritten per chat message. Now the writer checks a
/// chat against these counters before its insert, and a recipient's `ack` finds its row here
/// (an update by row id, or nothing to write at all when the message is delivered already).
///
/// The ledger is rebuilt from the database, never written to it: it is read at the first write
/// after the store opens, after a transaction that failed (the rollback undid what the ledger
/// recorded), and after a write that changed many rows in one statement (prune, a node's
/// handover). So it is exactly what committed plus what the open transaction did, and a crash
/// loses nothing of it. Bounded by what the database holds undelivered, which the limits bound
/// (`StoreLimits.messages`).
///
/// Owned by ``StoreConnection``, so used on the writer's thread only.
struct StoreLedger {
    /// One undelivered message for one recipient.
    struct Key: Hashable {
        var recipient: String
        var sender: String
        var id: String
    }

    struct Entry {
        /// The row (`messages.seq`).
        var seq: Int64
        /// The stored frame's bytes (what the limits count).
        var bytes: Int
        var room: String?
    }

    /// Count and bytes of undelivered messages in one scope.
    struct Usage: Equatable {
        var messages = 0
        var bytes = 0
    }

    private(set) var undelivered: [Key: Entry] = [:]
    private(set) var total = Usage()
    /// `r:NAME` per recipient and `#room` per room, as the `usage` table's scopes were; a
    /// scope at zero is removed.
    private var scopes: [String: Usage] = [:]

    /// Reads every undelivered message of `db` (the partial index `messages_undelivered`).
    static func load(_ db: StoreConnection) throws(SignalingError) -> StoreLedger {
        var ledger = StoreLedger()
        try db.each("SELECT seq, recipient, sender, id, length(CAST(frame AS BLOB)), room FROM messages WHERE delivered = 0") { row in
            guard let recipient = row.text(1), let sender = row.text(2), let id = row.text(3) else { return }
            ledger.add(Key(recipient: recipient, sender: sender, id: id),
                       Entry(seq: row.int64(0), bytes: Int(row.int64(4)), room: row.text(5)))
        }
        return ledger
    }

    /// Usage of `scope`: `*` (or nil) in total, `r:NAME` for a recipient, `#room` for a room.
    func usage(_ scope: String?) -> Usage {
        guard let scope, scope != "*" else { return total }
        return scopes[scope] ?? Usage()
    }

    /// Usage of the recipient `name`.
    func usage(recipient name: String) -> Usage {
        scopes["r:" + name] ?? Usage()
    }

    func entry(_ key: Key) -> Entry? {
        undelivered[key]
    }

    /// A row was inserted undelivered.
    mutating func add(_ key: Key, _ entry: Entry) {
        if let old = undelivered.updateValue(entry, forKey: key) { change(key.recipient, old, by: -1) }
        change(key.recipient, entry, by: 1)
    }

    /// A row stopped being undelivered (acknowledged, handed over, deleted).
    @discardableResult
    mutating func remove(_ key: Key) -> Entry? {
        guard let entry = undelivered.removeValue(forKey: key) else { return nil }
        change(key.recipient, entry, by: -1)
        return entry
    }

    private mutating func change(_ recipient: String, _ entry: Entry, by sign: Int) {
        total.messages += sign
        total.bytes += sign * entry.bytes
        adjust("r:" + recipient, entry.bytes, sign)
        if let room = entry.room { adjust(room, entry.bytes, sign) }
    }

    private mutating func adjust(_ scope: String, _ bytes: Int, _ sign: Int) {
        var usage = scopes[scope] ?? Usage()
        usage.messages += sign
        usage.bytes += sign * bytes
        scopes[scope] = usage.messages <= 0 ? nil : usage
    }
}
