import Foundation
internal import VaporCSQLite

/// Copies the store's write-ahead log back into the database beside the writer (issue 17), so
/// that the writer's commits no longer do the bulk of it. SQLite's automatic checkpoint runs
/// inside the commit that passes 1,000 pages of log (sqlite.org/wal.html §"Automatic
/// Checkpoint"): the writer's thread, which every chat's ack waits for, copied 1,000 pages and
/// synced the database file there.
///
/// Now the writer's connection has no automatic checkpoint: its `wal_hook` reports the log's
/// length (``committed(pages:)``), and every `nudgePages` of log this thread runs a PASSIVE
/// checkpoint on a connection of its own (sqlite.org/c3ref/wal_checkpoint_v2.html): it copies
/// what no reader still needs and never waits for the writer or readers.
///
/// That alone does not bound the log. The writer starts the log from its beginning only when a
/// checkpoint had copied all of it before the writer's transaction began (wal.html §"Avoiding
/// Excessively Large WAL Files"); a writer that commits back to back never finds that while
/// checkpoints run beside it (measured: 100 MiB of log in 1.5 s). So once the log passes
/// `restartPages`, the writer itself, between two batches, runs a PASSIVE checkpoint of what
/// this thread has not copied yet (little, when it kept up) and its next transaction restarts
/// the log (``StoreConnection/finishCheckpoint(walCap:)``). And when a reader that kept an old
/// snapshot made the file pass `walCap` bytes, the writer runs a TRUNCATE checkpoint, which waits
/// for readers and empties the file: the bound on the log.
///
/// Durability does not depend on checkpoints: a commit is durable once the writer synced it
/// into the log (`synchronous=FULL`); a checkpoint only moves committed pages.
final class StoreCheckpointer: Sendable {
    /// Log pages after which this thread checkpoints (SQLite's automatic default), and again
    /// after each as many more.
    static let nudgePages: Int32 = 1000
    /// Log pages after which the writer finishes the checkpoint and restarts the log.
    static let restartPages: Int32 = 2000
    /// Log bytes after which the writer's checkpoint waits for readers and truncates the file.
    static let defaultWALCap = StoreLimits().walBytes
    /// How often the thread checks without a nudge (a log the writer filled to under
    /// `nudgePages` and then left is copied back within this).
    static let idleInterval: TimeInterval = 1

    let walCap: Int
    private let state = State()

    /// `@unchecked Sendable`: fields are read and written with `condition` locked.
    private final class State: @unchecked Sendable {
        let condition = NSCondition()
        var nudged = false
        /// `nudgePages` steps of log at the last commit.
        var step: Int32 = 0
        var stopping = false
        var stopped = false
        var checkpoints = 0
        var restarts = 0
        var truncations = 0
    }

    /// Opens its own connection to `path` and starts its thread.
    init(path: String, walCap: Int = StoreCheckpointer.defaultWALCap) throws(SignalingError) {
        self.walCap = walCap
        var handle: OpaquePointer?
        let opened = sqlite_nio_sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, nil)
        guard opened == SQLITE_OK, let handle else {
            if let handle { sqlite_nio_sqlite3_close(handle) }
            throw SignalingError(.internalError, "cannot open \(path) for checkpoints: SQLite error \(opened)")
        }
        // A connection learns the database is in WAL mode when it first reads it; until then a
        // checkpoint on it does nothing at all (and returns SQLITE_OK).
        let read = sqlite_nio_sqlite3_exec(handle, "SELECT count(*) FROM sqlite_master", nil, nil, nil)
        guard read == SQLITE_OK else {
            sqlite_nio_sqlite3_close(handle)
            throw SignalingError(.internalError, "cannot read \(path) for checkpoints: SQLite error \(read)")
        }
        let state = state
        let connection = Handle(handle)
        let thread = Thread {
            nameThread("store-checkpoint")
            Self.serve(state: state, connection: connection)
        }
        thread.name = "store-checkpoint"
        thread.start()
    }

    /// The connection's handle, used on the checkpointer's thread only.
    private final class Handle: @unchecked Sendable {
        let pointer: OpaquePointer
        init(_ pointer: OpaquePointer) { self.pointer = pointer }
    }

    /// PASSIVE checkpoints this thread ran, and the writer's checkpoints that restarted the log
    /// and that emptied its file.
    var counts: (checkpoints: Int, restarts: Int, truncations: Int) {
        state.condition.lock()
        defer { state.condition.unlock() }
        return (state.checkpoints, state.restarts, state.truncations)
    }

    /// The writer committed and the log holds `pages`: asks for a checkpoint each time the log
    /// grew by another `nudgePages` (not after every commit: each checkpoint syncs the log and
    /// the database file). Called on the writer's thread.
    func committed(pages: Int32) {
        let step = pages / Self.nudgePages
        state.condition.lock()
        if step != state.step {
            state.step = step
            if step > 0 {
                state.nudged = true
                state.condition.signal()
            }
        }
        state.condition.unlock()
    }

    /// Counts a checkpoint of the writer's (``StoreConnection/finishCheckpoint(walCap:)``).
    func writerCheckpointed(truncated: Bool) {
        state.condition.lock()
        if truncated { state.truncations += 1 } else { state.restarts += 1 }
        state.condition.unlock()
    }

    /// Stops the thread and closes its connection; returns once it did.
    func stop() {
        state.condition.lock()
        state.stopping = true
        state.condition.broadcast()
        while !state.stopped { state.condition.wait() }
        state.condition.unlock()
    }

    private static func serve(state: State, connection: Handle) {
        while true {
            state.condition.lock()
            if !state.nudged && !state.stopping {
                _ = state.condition.wait(until: Date().addingTimeInterval(idleInterval))
            }
            let stopping = state.stopping
            state.nudged = false
            state.condition.unlock()
            if stopping { break }
            // SQLITE_BUSY when the writer's own checkpoint runs: nothing to do then.
            let status = sqlite_nio_sqlite3_wal_checkpoint_v2(connection.pointer, nil, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
            if status == SQLITE_OK {
                state.condition.lock()
                state.checkpoints += 1
                state.condition.unlock()
            }
        }
        sqlite_nio_sqlite3_close_v2(connection.pointer)
        state.condition.lock()
        state.stopped = true
        state.condition.broadcast()
        state.condition.unlock()
    }

    /// The log file's size in bytes, nil when it does not exist.
    static func walSize(_ path: String) -> Int? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Int(info.st_size)
    }
}
