import NIOCore
import SQLiteNIO
// The SQLite library SQLiteNIO links (its symbols prefixed `sqlite_nio_`): the writer's
// connection must use the same copy as the readers' — two copies of SQLite in one process
// release each other's POSIX locks on the same file (sqlite.org/howtocorrupt.html §2.2.1).
internal import VaporCSQLite

/// The store writer's own SQLite connection (issue 17): statements are prepared once and kept
/// (`SQLITE_PREPARE_PERSISTENT`), then reset and bound for each use, and every call is a plain
/// synchronous call on the writer's thread — no thread-pool queue and no event-loop hop per
/// statement, which is what bounded the store's rate when each statement was a SQLiteNIO query.
///
/// `@unchecked Sendable`: the handle and the statement cache are used by one thread at a time —
/// the writer's thread while it runs, the closing caller after the writer stopped
/// (``StoreWriter/close()``).
final class StoreConnection: @unchecked Sendable {
    private var handle: OpaquePointer?
    /// Prepared statements by their SQL text. Statements with a variable number of
    /// placeholders (a room message's recipients) make a few texts each; the cache is emptied
    /// when it holds `cacheLimit`.
    private var statements: [String: OpaquePointer] = [:]
    static let cacheLimit = 128
    /// The chat path's statements, by ``StoreStatement`` (prepared at first use): no hashing of
    /// SQL text per message, which was 5–8% of the writer's thread at 10,000/s (issue 17).
    private var fixed = [OpaquePointer?](repeating: nil, count: StoreStatement.allCases.count)
    /// The writer's view of undelivered messages (``StoreLedger``); nil until the first write
    /// that needs it reads it, and again after a transaction rolled back.
    private var ledger: StoreLedger?
    /// SQLite's "copy the bytes now" destructor (`SQLITE_TRANSIENT`, which Swift cannot import).
    fileprivate static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    /// Opens `path` for writing. The journal mode (WAL) is the database's; `synchronous` is
    /// per connection: FULL, so that a commit is on disk before the writer answers anyone.
    init(path: String) throws(SignalingError) {
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE
        let opened = sqlite_nio_sqlite3_open_v2(path, &handle, flags, nil)
        guard opened == SQLITE_OK, let handle else {
            if let handle { sqlite_nio_sqlite3_close(handle) }
            throw SignalingError(.internalError, "cannot open \(path) for writing: SQLite error \(opened)")
        }
        self.handle = handle
        // Readers on the other connection never block a WAL writer; a checkpoint may, briefly.
        sqlite_nio_sqlite3_busy_timeout(handle, Self.busyMilliseconds)
        try run("PRAGMA synchronous=FULL")
        // The indexes a chat's insert and ack touch are spread over the file (by sender, by
        // recipient): with SQLite's default 2 MiB cache each batch re-reads pages from the OS.
        try run("PRAGMA cache_size=-\(Self.cacheKiB)")
    }

    /// How long a statement waits for a lock another connection holds.
    static let busyMilliseconds: Int32 = 5000

    /// The writer's page cache, in KiB (64 MiB; the node's readers keep SQLite's default).
    static let cacheKiB = 65_536

    deinit { close() }

    /// Finalizes the statements and closes the connection; safe to call more than once.
    func close() {
        for statement in statements.values { sqlite_nio_sqlite3_finalize(statement) }
        statements.removeAll()
        for case let statement? in fixed { sqlite_nio_sqlite3_finalize(statement) }
        fixed = fixed.map { _ in nil }
        if let handle { sqlite_nio_sqlite3_close_v2(handle) }
        handle = nil
    }

    /// Runs one statement and returns its rows.
    @discardableResult
    func run(_ sql: String, _ binds: [SQLiteData] = []) throws(SignalingError) -> [StoreRow] {
        let statement = try prepared(sql)
        defer {
            sqlite_nio_sqlite3_reset(statement)
            sqlite_nio_sqlite3_clear_bindings(statement)
        }
        for (index, bind) in binds.enumerated() {
            let position = Int32(index + 1)
            let status: Int32
            switch bind {
            case .integer(let value): status = sqlite_nio_sqlite3_bind_int64(statement, position, Int64(value))
            case .float(let value): status = sqlite_nio_sqlite3_bind_double(statement, position, value)
            case .text(let value):
                status = sqlite_nio_sqlite3_bind_text64(statement, position, value, UInt64(value.utf8.count), Self.transient, UInt8(SQLITE_UTF8))
            case .blob(let value):
                status = value.withUnsafeReadableBytes {
                    sqlite_nio_sqlite3_bind_blob64(statement, position, $0.baseAddress, UInt64($0.count), Self.transient)
                }
            case .null: status = sqlite_nio_sqlite3_bind_null(statement, position)
            }
            guard status == SQLITE_OK else { throw failure(status, sql) }
        }
        var rows: [StoreRow] = []
        let columns = Int32(sqlite_nio_sqlite3_column_count(statement))
        while true {
            let status = sqlite_nio_sqlite3_step(statement)
            if status == SQLITE_DONE { return rows }
            guard status == SQLITE_ROW else { throw failure(status, sql) }
            var row = StoreRow()
            for column in 0..<columns {
                let name = String(cString: sqlite_nio_sqlite3_column_name(statement, column))
                row.values.append((name, value(statement, column)))
            }
            rows.append(row)
        }
    }

    /// Runs one statement that returns no rows, binding `binds` from the first placeholder on,
    /// and returns the rows it changed: no arrays of values or rows are made (the chat path's
    /// insert and ack run here, issue 17).
    @discardableResult
    func execute(_ sql: String, _ binds: StoreBind...) throws(SignalingError) -> Int {
        try step(sql, binds) { _ in }
        return Int(sqlite_nio_sqlite3_changes64(handle))
    }

    /// ``execute(_:_:)`` of one of the chat path's statements.
    @discardableResult
    func execute(_ statement: StoreStatement, _ binds: StoreBind...) throws(SignalingError) -> Int {
        try step(try prepared(statement), statement.sql, binds) { _ in }
        return Int(sqlite_nio_sqlite3_changes64(handle))
    }

    /// ``each(_:_:body:)`` of one of the chat path's statements.
    func each(_ statement: StoreStatement, _ binds: StoreBind..., body: (StoreCursor) throws(SignalingError) -> Void) throws(SignalingError) {
        try step(try prepared(statement), statement.sql, binds, body)
    }

    /// What the writer's `wal_hook` saw of the log, and where to report it. Used on the
    /// writer's thread only (the hook runs inside its commits).
    private final class WALWatch {
        let checkpointer: StoreCheckpointer
        let walPath: String
        /// Pages in the log after the last commit.
        var pages: Int32 = 0
        /// Pages after which the writer checkpoints next.
        var due = StoreCheckpointer.restartPages
        init(_ checkpointer: StoreCheckpointer, walPath: String) {
            self.checkpointer = checkpointer
            self.walPath = walPath
        }
    }
    private var walWatch: WALWatch?

    /// Hands every commit's log length to `checkpointer`, which runs the checkpoints: this
    /// connection no longer checkpoints inside its commits (a `wal_hook` replaces SQLite's
    /// automatic checkpoint, sqlite.org/c3ref/wal_hook.html); ``finishCheckpoint(walCap:)``
    /// restarts the log between batches.
    func watchLog(_ checkpointer: StoreCheckpointer, walPath: String) {
        guard let handle else { return }
        let watch = WALWatch(checkpointer, walPath: walPath)
        walWatch = watch
        sqlite_nio_sqlite3_wal_hook(handle, { context, _, _, pages in
            // Called on the writer's thread after the commit, its write lock released.
            guard let context else { return SQLITE_OK }
            let watch = Unmanaged<WALWatch>.fromOpaque(context).takeUnretainedValue()
            watch.pages = pages
            // The log restarted: the next checkpoint is due at `restartPages` again.
            if pages < StoreCheckpointer.restartPages { watch.due = StoreCheckpointer.restartPages }
            watch.checkpointer.committed(pages: pages)
            return SQLITE_OK
        }, Unmanaged.passUnretained(watch).toOpaque())
    }

    /// Between two batches, when the log passed `restartPages`: a PASSIVE checkpoint of what the
    /// checkpointer's thread has not copied yet, so that the next transaction starts the log
    /// from its beginning; or, when the log's file passed `walCap` bytes (a reader held an old
    /// snapshot while the log grew), a TRUNCATE checkpoint, which waits up to 200 ms for readers
    /// and empties the file. Tried again after every `nudgePages` more while it does not finish.
    func finishCheckpoint(walCap: Int) {
        guard let handle, let watch = walWatch, watch.pages >= watch.due else { return }
        watch.due = watch.pages + StoreCheckpointer.nudgePages
        let truncate = (StoreCheckpointer.walSize(watch.walPath) ?? 0) > walCap
        var log: Int32 = 0
        var copied: Int32 = 0
        let status: Int32
        if truncate {
            sqlite_nio_sqlite3_busy_timeout(handle, 200)
            status = sqlite_nio_sqlite3_wal_checkpoint_v2(handle, nil, SQLITE_CHECKPOINT_TRUNCATE, &log, &copied)
            sqlite_nio_sqlite3_busy_timeout(handle, Self.busyMilliseconds)
        } else {
            status = sqlite_nio_sqlite3_wal_checkpoint_v2(handle, nil, SQLITE_CHECKPOINT_PASSIVE, &log, &copied)
        }
        if status == SQLITE_OK, log == copied {
            watch.checkpointer.writerCheckpointed(truncated: truncate)
        }
    }

    /// The row id of the last row inserted on this connection.
    var lastInsertRowID: Int64 {
        handle.map { sqlite_nio_sqlite3_last_insert_rowid($0) } ?? 0
    }

    /// Runs one statement and hands each row to `body` while it is current (its columns read
    /// by index), without making a row value per row.
    func each(_ sql: String, _ binds: StoreBind..., body: (StoreCursor) throws(SignalingError) -> Void) throws(SignalingError) {
        try step(sql, binds, body)
    }

    /// Binds `binds` from the first placeholder on and steps the statement to its end, handing
    /// each row to `row`; the statement is reset for its next use either way.
    private func step(_ sql: String, _ binds: [StoreBind], _ row: (StoreCursor) throws(SignalingError) -> Void) throws(SignalingError) {
        try step(try prepared(sql), sql, binds, row)
    }

    private func step(_ statement: OpaquePointer, _ sql: String, _ binds: [StoreBind],
                      _ row: (StoreCursor) throws(SignalingError) -> Void) throws(SignalingError) {
        defer {
            sqlite_nio_sqlite3_reset(statement)
            sqlite_nio_sqlite3_clear_bindings(statement)
        }
        for (index, bind) in binds.enumerated() {
            try bind.bind(statement, Int32(index + 1), sql, self)
        }
        while true {
            let status = sqlite_nio_sqlite3_step(statement)
            if status == SQLITE_DONE { return }
            guard status == SQLITE_ROW else { throw failure(status, sql) }
            try row(StoreCursor(statement: statement))
        }
    }

    /// `body` with the ledger of undelivered messages, read from the database first if it is
    /// not held (the first write, or after a rollback).
    func withLedger<T>(_ body: (inout StoreLedger) throws(SignalingError) -> T) throws(SignalingError) -> T {
        var current: StoreLedger
        if let held = ledger { current = held } else { current = try StoreLedger.load(self) }
        ledger = nil
        defer { ledger = current }
        return try body(&current)
    }

    /// Forgets the ledger: the next use reads it again. After a rollback (it recorded what the
    /// database no longer holds) and after statements that changed many messages at once.
    func dropLedger() {
        ledger = nil
    }

    private func prepared(_ sql: String) throws(SignalingError) -> OpaquePointer {
        if let statement = statements[sql] { return statement }
        guard let handle else { throw SignalingError(.internalError, "storage failed: the store is closed") }
        if statements.count >= Self.cacheLimit {
            for statement in statements.values { sqlite_nio_sqlite3_finalize(statement) }
            statements.removeAll(keepingCapacity: true)
        }
        var statement: OpaquePointer?
        let status = sqlite_nio_sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard status == SQLITE_OK, let statement else { throw failure(status, sql) }
        statements[sql] = statement
        return statement
    }

    private func prepared(_ statement: StoreStatement) throws(SignalingError) -> OpaquePointer {
        if let prepared = fixed[statement.rawValue] { return prepared }
        guard let handle else { throw SignalingError(.internalError, "storage failed: the store is closed") }
        var prepared: OpaquePointer?
        let status = sqlite_nio_sqlite3_prepare_v3(handle, statement.sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &prepared, nil)
        guard status == SQLITE_OK, let prepared else { throw failure(status, statement.sql) }
        fixed[statement.rawValue] = prepared
        return prepared
    }

    private func value(_ statement: OpaquePointer, _ column: Int32) -> SQLiteData {
        switch sqlite_nio_sqlite3_column_type(statement, column) {
        case SQLITE_INTEGER: return .integer(SQLiteInt64(sqlite_nio_sqlite3_column_int64(statement, column)))
        case SQLITE_FLOAT: return .float(sqlite_nio_sqlite3_column_double(statement, column))
        case SQLITE_TEXT:
            guard let text = sqlite_nio_sqlite3_column_text(statement, column) else { return .null }
            return .text(String(cString: text))
        case SQLITE_BLOB:
            let count = Int(sqlite_nio_sqlite3_column_bytes(statement, column))
            var buffer = ByteBufferAllocator().buffer(capacity: count)
            if let bytes = sqlite_nio_sqlite3_column_blob(statement, column) {
                buffer.writeBytes(UnsafeRawBufferPointer(start: bytes, count: count))
            }
            return .blob(buffer)
        default: return .null
        }
    }

    fileprivate func failure(_ status: Int32, _ sql: String) -> SignalingError {
        let message = handle.flatMap { sqlite_nio_sqlite3_errmsg($0) }.map { String(cString: $0) } ?? "error \(status)"
        return SignalingError(.internalError, "storage failed: \(message) (\(sql.prefix(60)))")
    }
}

/// The statements every chat message runs, prepared once per connection and found by index.
enum StoreStatement: Int, CaseIterable {
    case begin, commit, rollback
    /// Whether the sender used the id before (a resend).
    case sentBefore
    case insertMessage
    /// A recipient's ack, by the row the ledger holds.
    case markDelivered

    var sql: String {
        switch self {
        // IMMEDIATE: take the write lock now, not at the first write inside.
        case .begin: "BEGIN IMMEDIATE"
        case .commit: "COMMIT"
        case .rollback: "ROLLBACK"
        case .sentBefore: "SELECT 1 FROM messages WHERE sender = ? AND id = ? LIMIT 1"
        case .insertMessage:
            "INSERT INTO messages (sender, id, recipient, frame, created, room) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
        case .markDelivered: "UPDATE messages SET delivered = 1, frame = '' WHERE seq = ?"
        }
    }
}

/// One row a ``StoreConnection`` statement returned: its columns by name, as SQLiteNIO's rows.
struct StoreRow: Sendable {
    var values: [(name: String, value: SQLiteData)] = []

    func column(_ name: String) -> SQLiteData? {
        values.first { $0.name == name }?.value
    }
}

/// A value bound to a placeholder by ``StoreConnection/execute(_:_:)``.
enum StoreBind {
    case text(String)
    case int(Int64)
    case real(Double)
    case null

    fileprivate func bind(_ statement: OpaquePointer, _ position: Int32, _ sql: String, _ connection: StoreConnection) throws(SignalingError) {
        let status: Int32
        switch self {
        case .text(let value):
            var value = value
            status = value.withUTF8 {
                sqlite_nio_sqlite3_bind_text64(statement, position, $0.baseAddress, UInt64($0.count), StoreConnection.transient, UInt8(SQLITE_UTF8))
            }
        case .int(let value): status = sqlite_nio_sqlite3_bind_int64(statement, position, value)
        case .real(let value): status = sqlite_nio_sqlite3_bind_double(statement, position, value)
        case .null: status = sqlite_nio_sqlite3_bind_null(statement, position)
        }
        guard status == SQLITE_OK else { throw connection.failure(status, sql) }
    }
}

/// The current row of ``StoreConnection/each(_:_:body:)``, read by column index.
struct StoreCursor {
    fileprivate let statement: OpaquePointer

    func int64(_ column: Int32) -> Int64 {
        sqlite_nio_sqlite3_column_int64(statement, column)
    }

    /// The column as text, nil when it is NULL.
    func text(_ column: Int32) -> String? {
        guard let bytes = sqlite_nio_sqlite3_column_text(statement, column) else { return nil }
        let count = Int(sqlite_nio_sqlite3_column_bytes(statement, column))
        return String(decoding: UnsafeRawBufferPointer(start: bytes, count: count), as: UTF8.self)
    }
}
