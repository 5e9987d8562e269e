import Foundation
internal import VaporCSQLite

/// Copies the store's write-ahead log back into the database on a thread of its own (issue 17),
/// so that the writer's commit never does it. SQLite's automatic checkpoint runs inside the
/// commit that passes 1,000 pages of log (sqlite.org/wal.html §"Automatic Checkpoint"): the
/// writer's thread, which every chat's ack waits for, copied pages and fsynced the database
/// there. Now the writer's connection has no automatic checkpoint (its `wal_hook` only
/// nudges this thread, ``StoreConnection/nudgeCheckpoints(_:)``) and this connection runs them.
///
/// Checkpoints are PASSIVE (sqlite.org/c3ref/wal_checkpoint_v2.html): they copy what no reader
/// still needs and never wait for the writer or readers, so the writer goes on committing
/// meanwhile. Once a checkpoint copied the whole log, the writer's next transaction starts the
/// log from its beginning again (wal.html §"Avoiding Excessively Large WAL Files"), so the file
/// stops growing. A reader that keeps a snapshot open stops a PASSIVE checkpoint from finishing;
/// when the log file passes `walCap` bytes anyway, a TRUNCATE checkpoint waits (up to the busy
/// timeout) for readers and the writer and empties the file: the bound on the log.
///
/// Durability does not depend on this thread: a commit is durable once the writer fsynced it
/// into the log (`synchronous=FULL`); a checkpoint only moves committed pages.
final class StoreCheckpointer: Sendable {
    /// Log pages after which a commit nudges the checkpointer (SQLite's automatic default).
    static let nudgePages: Int32 = 1000
    /// Log bytes after which the checkpoint waits for readers and truncates the file.
    static let defaultWALCap = StoreLimits().walBytes
    /// How often the thread checks without a nudge (a log the writer filled to under
    /// `nudgePages` and then left is copied back within this).
    static let idleInterval: TimeInterval = 1

    let walCap: Int
    private let walPath: String
    private let state = State()

    /// `@unchecked Sendable`: fields are read and written with `condition` locked.
    private final class State: @unchecked Sendable {
        let condition = NSCondition()
        var nudged = false
        var stopping = false
        var stopped = false
        var checkpoints = 0
        var truncations = 0
        var failures = 0
    }

    /// Opens its own connection to `path` and starts its thread.
    init(path: String, walCap: Int = StoreCheckpointer.defaultWALCap) throws(SignalingError) {
        self.walCap = walCap
        self.walPath = path + "-wal"
        var handle: OpaquePointer?
        let opened = sqlite_nio_sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, nil)
        guard opened == SQLITE_OK, let handle else {
            if let handle { sqlite_nio_sqlite3_close(handle) }
            throw SignalingError(.internalError, "cannot open \(path) for checkpoints: SQLite error \(opened)")
        }
        // A TRUNCATE checkpoint waits this long for readers and the writer, then gives up.
        sqlite_nio_sqlite3_busy_timeout(handle, 5000)
        let state = state
        let walPath = walPath
        let connection = Handle(handle)
        let thread = Thread {
            Self.serve(state: state, connection: connection, walPath: walPath, walCap: walCap)
        }
        thread.name = "store-checkpoint"
        thread.start()
    }

    /// The connection's handle, used on the checkpointer's thread only.
    private final class Handle: @unchecked Sendable {
        let pointer: OpaquePointer
        init(_ pointer: OpaquePointer) { self.pointer = pointer }
    }

    /// Checkpoints run so far, TRUNCATE ones among them, and ones SQLite refused.
    var counts: (checkpoints: Int, truncations: Int, failures: Int) {
        state.condition.lock()
        defer { state.condition.unlock() }
        return (state.checkpoints, state.truncations, state.failures)
    }

    /// Asks for a checkpoint soon; cheap (the writer calls it after a commit).
    func nudge() {
        state.condition.lock()
        if !state.nudged {
            state.nudged = true
            state.condition.signal()
        }
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

    private static func serve(state: State, connection: Handle, walPath: String, walCap: Int) {
        while true {
            state.condition.lock()
            if !state.nudged && !state.stopping {
                _ = state.condition.wait(until: Date().addingTimeInterval(idleInterval))
            }
            let stopping = state.stopping
            state.nudged = false
            state.condition.unlock()
            if stopping { break }
            var mode = SQLITE_CHECKPOINT_PASSIVE
            if let size = walSize(walPath), size > walCap { mode = SQLITE_CHECKPOINT_TRUNCATE }
            let status = sqlite_nio_sqlite3_wal_checkpoint_v2(connection.pointer, nil, mode, nil, nil)
            state.condition.lock()
            if status == SQLITE_OK {
                state.checkpoints += 1
                if mode == SQLITE_CHECKPOINT_TRUNCATE { state.truncations += 1 }
            } else {
                // SQLITE_BUSY: a reader outlasted the busy timeout; the next round tries again.
                state.failures += 1
            }
            state.condition.unlock()
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
