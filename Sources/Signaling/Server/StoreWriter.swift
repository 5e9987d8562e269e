import Synchronization
import SQLiteNIO

/// The store's one writer, with group commit (issue 17): every write of ``SignalingStore`` runs
/// here, one at a time, inside a transaction; writes that arrive while a transaction commits
/// wait and go into the next one together. One commit (one fsync with `synchronous=FULL`) then
/// covers many chat messages instead of one each, and a write's caller is answered only once the
/// transaction holding it has committed: nothing is acknowledged before it is durable.
///
/// A write's statements are each atomic, and the store's writes throw only after statements
/// that changed nothing (a guarded `INSERT … WHERE` that inserted no row) or on a database
/// failure, which fails the whole transaction; so a write that throws leaves nothing half done
/// in the batch it shared, and no savepoint per write is needed.
///
/// The queue holds at most one write per caller in flight: each connection and link awaits its
/// write before it reads its next frame, so the node's connection budget bounds it.
///
/// Reads do not wait for the writer: they run on the same connection and may see a batch that
/// is still committing. What they hand out (a pending message) is then at worst delivered before
/// its sender's ack, and the sender's resend with the same id is recognised.
final class StoreWriter: Sendable {
    private struct Job: Sendable {
        /// Runs the write's statements inside the open transaction and keeps its outcome.
        let run: @Sendable () async -> Void
        /// Answers the caller once the transaction ended: with the kept outcome, or with the
        /// commit's failure.
        let finish: @Sendable (SignalingError?) -> Void
    }

    private struct State {
        var jobs: [Job] = []
        var draining = false
    }

    /// Writes taken into one transaction at most; more wait for the next.
    static let batchLimit = 256

    private let db: SQLiteConnection
    private let state = Mutex(State())
    private let commits = Atomic<Int>(0)

    init(db: SQLiteConnection) {
        self.db = db
    }

    /// Transactions committed so far (each holds one or more writes).
    var commitCount: Int { commits.load(ordering: .relaxed) }

    /// Runs `body` in the next transaction and returns its result once that transaction has
    /// committed; throws the body's error, or `internalError` when the commit failed (the
    /// body's changes are then rolled back with the rest of its batch).
    func write<T: Sendable>(_ body: @escaping @Sendable () async throws(SignalingError) -> T) async throws(SignalingError) -> T {
        let outcome = Mutex<Result<T, SignalingError>?>(nil)
        let result: Result<T, SignalingError> = await withCheckedContinuation { continuation in
            let job = Job(
                run: {
                    let value: Result<T, SignalingError>
                    do throws(SignalingError) { value = .success(try await body()) } catch { value = .failure(error) }
                    outcome.withLock { $0 = value }
                },
                finish: { commitFailure in
                    if let commitFailure {
                        continuation.resume(returning: .failure(commitFailure))
                    } else {
                        continuation.resume(returning: outcome.withLock { $0 } ?? .failure(SignalingError(.internalError, "the write did not run")))
                    }
                })
            let start = state.withLock { state -> Bool in
                state.jobs.append(job)
                defer { state.draining = true }
                return !state.draining
            }
            if start { Task { await self.drain() } }
        }
        return try result.get()
    }

    /// Commits batches until no write waits.
    private func drain() async {
        while true {
            let batch = state.withLock { state -> [Job] in
                let batch = Array(state.jobs.prefix(Self.batchLimit))
                state.jobs.removeFirst(batch.count)
                if batch.isEmpty { state.draining = false }
                return batch
            }
            if batch.isEmpty { return }
            var failure: SignalingError?
            do {
                // IMMEDIATE: take the write lock now, not at the first write inside.
                _ = try await db.query("BEGIN IMMEDIATE")
                for job in batch { await job.run() }
                _ = try await db.query("COMMIT")
                commits.add(1, ordering: .relaxed)
            } catch {
                failure = SignalingError(.internalError, "storage failed: \(error)")
                _ = try? await db.query("ROLLBACK")
            }
            for job in batch { job.finish(failure) }
        }
    }
}
