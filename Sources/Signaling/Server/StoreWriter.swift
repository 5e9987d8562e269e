import Foundation

/// The store's one writer, with group commit (issue 17): every write of ``SignalingStore`` runs
/// here, on one thread of its own with its own connection (``StoreConnection``, statements
/// prepared once), inside a transaction. Writes that arrive while a transaction commits wait
/// and go into the next one together, so one commit (one fsync with `synchronous=FULL`) covers
/// many chat messages when many come. A write's caller is answered only once the transaction
/// holding it has committed: nothing is acknowledged before it is durable.
///
/// Commits are paced: one begins at most every ``commitSpacing``. A write that comes to an idle
/// writer is committed at once; one that comes less than the spacing after the last commit
/// began waits for the rest of it, with what else comes meanwhile (up to ``eagerBatch`` writes,
/// which go at once). Where fsync is fast (tmpfs, a disk cache) the writer otherwise committed
/// each write or two on its own: at 8,000 chat messages a second, 3,800 commits a second, each
/// with its fixed cost (the log's header pages, file locks, wake-ups, and SQLite's page-cache
/// scan below), and the node spent 177 µs of CPU per message against 93 µs at 15,000/s.
///
/// The writer's thread only runs the statements and commits: it hands each ended batch to a
/// second thread (``Answerer``), which answers the callers (builds and sends the acks) and
/// releases the batch's closures while the writer goes on with the next batch. Answering was
/// 15% and releasing 16% of the writer's thread at 10,000 chat messages a second (issue 17).
///
/// A write's statements are each atomic, and the store's writes throw only after statements
/// that changed nothing (a guarded `INSERT … WHERE` that inserted no row) or on a database
/// failure, which fails the whole transaction; so a write that throws leaves nothing half done
/// in the batch it shared, and no savepoint per write is needed.
///
/// The queue is bounded (`queueLimit`): a write that finds it full is refused at once with
/// `store-busy` and a reason, so that clients that send faster than the disk commits get an answer
/// instead of a queue that grows without end (the node had 10 s of backlog before).
///
/// Reads do not wait for the writer: they run on SQLiteNIO's connection (WAL: readers never
/// block the writer) and see what has committed.
final class StoreWriter: Sendable {
    /// A write: runs its statements inside the open transaction and returns what answers the
    /// caller once the transaction ended (with the commit's failure, if any).
    private struct Job: Sendable {
        let run: @Sendable (StoreConnection) -> @Sendable (SignalingError?) -> Void
        /// Answers the caller when the job could not run (the transaction did not begin).
        let refuse: @Sendable (SignalingError) -> Void
    }

    /// The queue between callers and the writer's thread. `@unchecked Sendable`: every field
    /// is read and written with `condition` locked.
    private final class Queue: @unchecked Sendable {
        let condition = NSCondition()
        var jobs: [Job] = []
        var stopping = false
        var stopped: [CheckedContinuation<Void, Never>] = []

        func locked<T>(_ body: (Queue) -> T) -> T {
            condition.lock()
            defer { condition.unlock() }
            return body(self)
        }
        var finished = false
        /// Transactions committed, and the writes they held.
        var commits = 0
        var written = 0
    }

    /// Writes taken into one transaction at most; more wait for the next.
    static let batchLimit = 512
    /// The least time from one commit's start to the next's (see the type's comment). At the
    /// end of a commit SQLite scans its whole page cache whenever the transaction split a
    /// b-tree page (`balance_nonroot` renumbers pages through the lock page's number, which
    /// `pcache1Truncate` then takes for a page past the end): with the writer's 64 MiB cache,
    /// about 80 µs per commit.
    static let commitSpacing: UInt64 = 1_000_000  // ns
    /// Writes that go into a transaction at once, without waiting for the spacing.
    static let eagerBatch = 64
    /// The longest sleep while the spacing passes, so that an eager batch waits no longer.
    static let paceStep: UInt64 = 250_000  // ns
    /// Ended batches waiting for the answerer at most; the writer waits beyond it (and its own
    /// queue, bounded by `queueLimit`, fills): what waits for an answer stays bounded.
    static let answerLimit = 8

    /// Writes that may wait at most; one more is refused with `store-busy`.
    let queueLimit: Int
    private let queue = Queue()

    /// Runs the log's checkpoints, off the commit path.
    let checkpointer: StoreCheckpointer

    /// Opens the writer's connection to `path` and starts its thread, and the checkpointer's
    /// (which keeps the log under `walCap` bytes).
    init(path: String, queueLimit: Int, walCap: Int = StoreCheckpointer.defaultWALCap) throws(SignalingError) {
        self.queueLimit = queueLimit
        let connection = try StoreConnection(path: path)
        let checkpointer = try StoreCheckpointer(path: path, walCap: walCap)
        connection.watchLog(checkpointer, walPath: path + "-wal")
        self.checkpointer = checkpointer
        let queue = queue
        let answerer = Answerer()
        let answers = Thread {
            nameThread("store-answers")
            answerer.serve()
        }
        answers.name = "store-answers"
        answers.start()
        // The thread holds the queue and the connection, not the writer: a writer dropped
        // without `close()` stops it from `deinit`.
        let thread = Thread {
            nameThread("store-writer")
            Self.serve(queue: queue, connection: connection, checkpointer: checkpointer, answerer: answerer)
        }
        thread.name = "store-writer"
        thread.start()
    }

    deinit {
        queue.condition.lock()
        queue.stopping = true
        queue.condition.broadcast()
        queue.condition.unlock()
    }

    /// Transactions committed so far (each holds one or more writes).
    var commitCount: Int { queue.locked { $0.commits } }
    /// Writes committed so far.
    var writeCount: Int { queue.locked { $0.written } }
    /// Writes waiting for the next transaction now.
    var queuedCount: Int { queue.locked { $0.jobs.count } }

    /// Queues `body` for the next transaction and calls `then` on the answering thread once that
    /// transaction has committed — with the body's result or error, or with `internalError`
    /// when the commit failed (the body's changes are then rolled back with its batch). A full
    /// queue calls `then` at once with `store-busy`; a closed store with `internalError`.
    func submit<T: Sendable>(_ body: @escaping @Sendable (StoreConnection) throws(SignalingError) -> T,
                             then: @escaping @Sendable (Result<T, SignalingError>) -> Void) {
        let job = Job(
            run: { connection in
                let result: Result<T, SignalingError>
                do throws(SignalingError) { result = .success(try body(connection)) } catch { result = .failure(error) }
                return { commitFailure in then(commitFailure.map { .failure($0) } ?? result) }
            },
            refuse: { then(.failure($0)) })
        queue.condition.lock()
        if queue.stopping {
            queue.condition.unlock()
            return then(.failure(SignalingError(.internalError, "storage failed: the store is closed")))
        }
        guard queue.jobs.count < queueLimit else {
            queue.condition.unlock()
            return then(.failure(SignalingError(.storeBusy, "the node's store has \(queueLimit) writes waiting for the disk; nothing was stored, send again in a moment")))
        }
        queue.jobs.append(job)
        queue.condition.signal()
        queue.condition.unlock()
    }

    /// Runs `body` in the next transaction and returns its result once that transaction has
    /// committed; throws the body's error, `store-busy` when the queue is full, or `internalError`
    /// when the commit failed.
    func write<T: Sendable>(_ body: @escaping @Sendable (StoreConnection) throws(SignalingError) -> T) async throws(SignalingError) -> T {
        let result: Result<T, SignalingError> = await withCheckedContinuation { continuation in
            submit(body) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }

    /// Commits what is queued, then stops the thread and closes the connection.
    func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            queue.condition.lock()
            if queue.finished {
                queue.condition.unlock()
                return continuation.resume()
            }
            queue.stopping = true
            queue.stopped.append(continuation)
            queue.condition.broadcast()
            queue.condition.unlock()
        }
    }

    /// The writer's thread: commits batches until stopped and nothing waits.
    private static func serve(queue: Queue, connection: StoreConnection, checkpointer: StoreCheckpointer, answerer: Answerer) {
        var lastCommit: UInt64 = 0
        while true {
            queue.condition.lock()
            while queue.jobs.isEmpty && !queue.stopping { queue.condition.wait() }
            pace(queue, since: lastCommit)
            if queue.jobs.isEmpty {
                queue.finished = true
                let stopped = queue.stopped
                queue.stopped.removeAll()
                queue.condition.unlock()
                connection.close()
                checkpointer.stop()
                // Resumed once every answer queued before was given.
                answerer.finish(stopped)
                return
            }
            let batch: [Job]
            if queue.jobs.count <= batchLimit {
                batch = queue.jobs
                // An array the answerer emptied (no new array of up to `batchLimit` jobs per
                // batch: a large allocation each time, issue 17).
                queue.jobs = answerer.spareArray()
            } else {
                batch = Array(queue.jobs.prefix(batchLimit))
                queue.jobs.removeFirst(batchLimit)
            }
            queue.condition.unlock()
            lastCommit = DispatchTime.now().uptimeNanoseconds
            let count = batch.count
            let ended = commit(batch, connection: connection)
            if ended.failure == nil {
                queue.locked { queue in
                    queue.commits += 1
                    queue.written += count
                }
            }
            answerer.hand(Answerer.Batch(jobs: batch, answers: ended.answers, failure: ended.failure))
            connection.finishCheckpoint(walCap: checkpointer.walCap)
        }
    }

    /// With `queue` locked and writes waiting: waits, unlocked meanwhile, until
    /// ``commitSpacing`` has passed since `lastCommit` began, or ``eagerBatch`` writes wait, or
    /// the writer stops. It sleeps in short steps (``paceStep``) rather than on the condition:
    /// then no write needs to signal it.
    private static func pace(_ queue: Queue, since lastCommit: UInt64) {
        let due = lastCommit + commitSpacing
        while !queue.stopping, queue.jobs.count < eagerBatch {
            let now = DispatchTime.now().uptimeNanoseconds
            guard now < due else { return }
            queue.condition.unlock()
            var pause = timespec(tv_sec: 0, tv_nsec: Int(min(due - now, paceStep)))
            nanosleep(&pause, nil)
            queue.condition.lock()
        }
    }

    /// Gives the answers of ended batches on a thread of its own, in the order the batches
    /// ended (so a caller's answers keep the order of its writes), and releases their jobs.
    /// `@unchecked Sendable`: every field is read and written with `condition` locked.
    private final class Answerer: @unchecked Sendable {
        struct Batch {
            var jobs: [Job]
            var answers: [@Sendable (SignalingError?) -> Void]
            /// Given to every answer; nil when the batch committed.
            var failure: SignalingError?
        }

        private let condition = NSCondition()
        private var waiting: [Batch] = []
        private var spare: [Job]?
        private var stopped: [CheckedContinuation<Void, Never>]?

        /// Queues `batch`; waits while `answerLimit` batches wait already.
        func hand(_ batch: Batch) {
            condition.lock()
            while waiting.count >= StoreWriter.answerLimit { condition.wait() }
            waiting.append(batch)
            condition.broadcast()
            condition.unlock()
        }

        /// An empty array with room for a batch.
        func spareArray() -> [Job] {
            condition.lock()
            defer { condition.unlock() }
            if let spare {
                self.spare = nil
                return spare
            }
            var fresh: [Job] = []
            fresh.reserveCapacity(StoreWriter.batchLimit)
            return fresh
        }

        /// Resumes `continuations` after the answers queued before, and ends the thread.
        func finish(_ continuations: [CheckedContinuation<Void, Never>]) {
            condition.lock()
            stopped = continuations
            condition.broadcast()
            condition.unlock()
        }

        func serve() {
            var batches: [Batch] = []
            while true {
                condition.lock()
                while waiting.isEmpty && stopped == nil { condition.wait() }
                if waiting.isEmpty, let stopped {
                    condition.unlock()
                    for continuation in stopped { continuation.resume() }
                    return
                }
                swap(&batches, &waiting)
                condition.broadcast()
                condition.unlock()
                for batch in batches {
                    for answer in batch.answers { answer(batch.failure) }
                }
                var jobs = batches.last?.jobs ?? []
                batches.removeAll(keepingCapacity: true)
                jobs.removeAll(keepingCapacity: true)
                if jobs.capacity >= StoreWriter.batchLimit {
                    condition.lock()
                    if spare == nil { spare = jobs }
                    condition.unlock()
                }
            }
        }
    }

    /// One transaction holding `batch`: its answers, and the failure to give them (nil when
    /// it committed).
    private static func commit(_ batch: [Job], connection: StoreConnection)
        -> (answers: [@Sendable (SignalingError?) -> Void], failure: SignalingError?) {
        do throws(SignalingError) {
            try connection.execute(.begin)
        } catch {
            // The jobs did not run: each is refused.
            return (batch.map { job in { _ in job.refuse(error) } }, error)
        }
        let answers = batch.map { $0.run(connection) }
        var failure: SignalingError?
        do throws(SignalingError) {
            try connection.execute(.commit)
        } catch {
            failure = error
            _ = try? connection.execute(.rollback)
            // The ledger recorded what the rollback undid.
            connection.dropLedger()
        }
        return (answers, failure)
    }
}

/// Names the calling thread for the OS (`/proc`, `perf`, `top -H`): Foundation's `Thread.name`,
/// set before `start()`, does not reach the OS thread on Linux, so the store's threads showed
/// under their creator's name and the bench could not tell their CPU apart.
func nameThread(_ name: String) {
    // `pthread_setname_np` is not visible to Swift here (a GNU extension); the kernel's file
    // for the calling thread's name does the same. It keeps 15 bytes.
    guard let file = fopen("/proc/thread-self/comm", "w") else { return }
    fputs(String(name.utf8.prefix(15))!, file)
    fclose(file)
}
