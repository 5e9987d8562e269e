import Foundation
import Logging
import NIOCore
import PostgresNIO
import Signaling
import Synchronization

/// The cluster store's chat writer, with group commit (issue 17; the SQLite store's
/// `StoreWriter` is its single-node twin): every chat message and every recipient's ack of one
/// goes through here, and one loop writes them — a batch is what queued while the previous
/// batch committed, written by **one** prepared statement (arrays unnested into a multi-row
/// `INSERT` and an `UPDATE`), so one round trip and one WAL flush cover many messages when
/// many come, and a lone message is not held back to wait for company.
///
/// A caller is answered only after the statement holding its write returned, i.e. after
/// PostgreSQL committed it (`synchronous_commit` on, its default): nothing is acknowledged
/// before it is durable. A statement either commits whole or not at all, so a batch that fails
/// leaves nothing half written.
///
/// - One loop, one statement at a time: a sender's messages commit in the order they came,
///   and a recipient gets them in that order.
/// - Its own connection (not one leased from the pool per batch): a connection PostgreSQL
///   ended is known at once (`isClosed`, or the error) and replaced before the next statement.
/// - Failures: when PostgreSQL refuses a batch (a server error: one write it cannot take, say),
///   each write of it is tried alone, so that one bad write fails only itself. When the
///   connection is lost mid-batch, the batch is written once more on a new connection: a chat
///   that did commit before the loss is then found by the duplicate check and answered
///   `duplicate`, an ack is applied once (`AND NOT delivered`), so the retry stores nothing
///   twice. When that fails too, the batch's senders are told (`internal`, nothing
///   acknowledged) and resend the same ids later. A connection that failed is closed and
///   never used again: a statement written to a channel NIO has already torn down is never
///   answered by postgres-nio (its promise is dropped), so reusing one can hang the loop.
/// - Deadline: PostgreSQL cancels a statement that runs longer than `statementTimeout` (the
///   connection's `statement_timeout`, lock waits included), and the writer gives up on one
///   that has not answered `statementTimeout` + ``clientGrace`` after it was sent (a dead
///   peer, a stopped backend, a dropped promise): it closes that connection, answers the
///   batch `internal` (nothing acknowledged: the senders resend) and goes on with a new one.
///   So the loop never waits forever, and one batch waits at most twice the deadline (once
///   more after a lost connection).
/// - Bound: at most `queueLimit` writes wait or are in flight; one more is refused at once
///   with `store-busy`, so a flood gets answers instead of an unbounded queue.
final class PostgresWriter: Sendable {
    /// A write waiting for the next batch.
    enum Job: Sendable {
        /// A chat message: stored for each recipient unless `sender` used `id` before.
        case chat(Chat)
        /// A recipient acknowledged a message: it is not delivered again.
        case delivered(recipient: String, sender: String, id: String, then: @Sendable (Result<Void, SignalingError>) -> Void)
    }

    struct Chat: Sendable {
        let sender: String
        let id: String
        let recipients: [String]
        let frame: String
        let then: @Sendable (Result<SignalingStore.Enqueued, SignalingError>) -> Void
    }

    private struct State {
        var jobs: [Job] = []
        /// Writes queued or in the batch being written.
        var admitted = 0
        var closed = false
        var batches = 0
        var written = 0
        var opened = 0
        var reconnects: Int { max(0, opened - 1) }
    }

    /// Writes in one statement at most; more wait for the next.
    static let batchLimit = 1024
    /// How long PostgreSQL may take over one batch's statement, by default.
    static let defaultStatementTimeout: Duration = .seconds(30)
    /// How much longer than `statementTimeout` the writer waits for an answer before it gives
    /// the connection up (PostgreSQL's own cancel, when it can send one, comes first).
    static let clientGrace: Duration = .seconds(2)

    let queueLimit: Int
    let statementTimeout: Duration
    let limits: StoreLimits
    /// Opens the writer's connection (again, after one was lost).
    private let connect: @Sendable () async throws -> PostgresConnection
    private let logger: Logger
    private let state = Mutex(State())
    private let wake: AsyncStream<Void>.Continuation
    /// Told what each batch changed: messages stored (count, bytes) and acks applied.
    private let written: @Sendable (_ stored: Int, _ bytes: Int, _ delivered: Int) -> Void

    /// `connect` opens a connection whose `statement_timeout` is `statementTimeout`
    /// (``startupParameters(statementTimeout:)``).
    init(connect: @escaping @Sendable () async throws -> PostgresConnection, limits: StoreLimits,
         statementTimeout: Duration = PostgresWriter.defaultStatementTimeout, logger: Logger,
         written: @escaping @Sendable (_ stored: Int, _ bytes: Int, _ delivered: Int) -> Void) {
        self.connect = connect
        self.statementTimeout = statementTimeout
        self.limits = limits
        self.queueLimit = limits.writeQueue
        self.logger = logger
        self.written = written
        let (wakes, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.wake = wake
        Task { [self] in
            var connection: PostgresConnection?
            for await _ in wakes {
                while let batch = take() { await write(batch, on: &connection) }
            }
            try? await connection?.close()
        }
    }

    /// Writes queued for the next batch (not the one being written).
    var queued: Int { state.withLock { $0.jobs.count } }
    /// Writes queued or being written: what ``queueLimit`` bounds.
    var admittedCount: Int { state.withLock { $0.admitted } }

    /// Batches written so far, and the writes they held.
    var counts: (batches: Int, writes: Int) { state.withLock { ($0.batches, $0.written) } }
    /// Connections opened after one was lost.
    var reconnects: Int { state.withLock { $0.reconnects } }

    /// Queues `job`, or answers it at once: `store-busy` when `queueLimit` writes wait.
    func submit(_ job: Job) {
        let refusal: SignalingError? = state.withLock { state in
            if state.closed { return SignalingError(.internalError, "cluster store: closed") }
            guard state.admitted < queueLimit else {
                return SignalingError(.storeBusy, "the node's store has \(queueLimit) writes waiting for PostgreSQL; nothing was stored, send again in a moment")
            }
            state.admitted += 1
            state.jobs.append(job)
            return nil
        }
        if let refusal { return Self.answer(job, .failure(refusal)) }
        wake.yield()
    }

    /// Stops taking writes; those queued are still written.
    func close() {
        state.withLock { $0.closed = true }
        wake.finish()
    }

    /// The next batch: what queued, up to ``batchLimit``. A chat whose (sender, id) is already in
    /// the batch waits for the next one, where the duplicate check sees the first committed.
    private func take() -> [Job]? {
        state.withLock { state in
            guard !state.jobs.isEmpty else { return nil }
            var batch: [Job] = []
            var later: [Job] = []
            var ids = Set<String>()
            for job in state.jobs {
                if batch.count >= Self.batchLimit {
                    later.append(job)
                } else if case .chat(let chat) = job, !ids.insert(chat.sender + "\n" + chat.id).inserted {
                    later.append(job)
                } else {
                    batch.append(job)
                }
            }
            state.jobs = later
            return batch
        }
    }

    /// What one write of a batch came to.
    private enum Outcome {
        case enqueued(SignalingStore.Enqueued)
        case delivered
        case failed(SignalingError)
    }

    private func write(_ batch: [Job], on connection: inout PostgresConnection?) async {
        var answers: [Outcome]
        do {
            answers = try await runAgainIfLost(batch, on: &connection)
        } catch where Self.classify(error) == .refused && batch.count > 1 {
            // PostgreSQL refused the statement and the connection is fine: find the write it
            // could not take by writing each alone.
            logger.warning("cluster store: a batch was refused; writing its \(batch.count) writes one by one",
                           metadata: ["error": "\(Self.describe(error))"])
            answers = []
            for job in batch {
                do {
                    answers.append(try await runAgainIfLost([job], on: &connection)[0])
                } catch {
                    answers.append(.failed(failure(error)))
                }
            }
        } catch {
            answers = Array(repeating: .failed(failure(error)), count: batch.count)
        }
        state.withLock { state in
            state.admitted -= batch.count
            state.batches += 1
            state.written += batch.count
        }
        for (job, answer) in zip(batch, answers) {
            switch (job, answer) {
            case (.chat(let chat), .enqueued(let enqueued)): chat.then(.success(enqueued))
            case (.delivered(_, _, _, let then), .delivered): then(.success(()))
            case (_, .failed(let error)): Self.answer(job, .failure(error))
            default: Self.answer(job, .failure(SignalingError(.internalError, "cluster store: a write got another write's answer")))
            }
        }
    }

    private static func answer(_ job: Job, _ result: Result<Never, SignalingError>) {
        switch job {
        case .chat(let chat): chat.then(result.map { _ in .duplicate })
        case .delivered(_, _, _, let then): then(result.map { _ in () })
        }
    }

    /// How a statement failed, which decides what the writer does next.
    enum Failure: Equatable {
        /// The session ended (the connection is unusable): write the batch again on a new one.
        case lost
        /// No answer in time (``Deadline``, or PostgreSQL's `statement_timeout` cancel): the
        /// batch fails whole; writing it again, or each write alone, would wait as long again.
        case timedOut
        /// PostgreSQL refused the statement and the session is fine: one write of the batch is
        /// bad, so each is written alone.
        case refused
    }

    /// Thrown when a statement (or a connect) has not been answered within its limit.
    struct Deadline: Error, CustomStringConvertible {
        let limit: Duration
        var description: String { "PostgreSQL did not answer within \(limit)" }
    }

    /// Sorts `error` (PostgreSQL docs, Appendix A): no server answer at all, SQLSTATE class 08
    /// (connection exception), 57P01–57P05 (the backend was terminated, the server shuts
    /// down or restarts) and FATAL/PANIC reports end the session; 57014 (`query_canceled`) is
    /// `statement_timeout`; any other server error is a refusal.
    static func classify(_ error: any Error) -> Failure {
        if error is Deadline { return .timedOut }
        guard let error = error as? PSQLError else { return .lost }
        guard error.code == .server, let info = error.serverInfo else { return .lost }
        let state = info[.sqlState] ?? ""
        let severity = info[.severity] ?? info[.localizedSeverity] ?? ""
        if state.hasPrefix("08") || state.hasPrefix("57P") || severity == "FATAL" || severity == "PANIC" { return .lost }
        if state == "57014" { return .timedOut }
        return .refused
    }

    /// PostgreSQL's message, or what else failed.
    static func describe(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return "\(error)" }
        return error.serverInfo?[.message] ?? "\(error.code)"
    }

    private func failure(_ error: any Error) -> SignalingError {
        switch Self.classify(error) {
        case .refused:
            return SignalingError(.internalError, "cluster store: PostgreSQL refused the write: \(Self.describe(error)); nothing was stored")
        case .timedOut:
            return SignalingError(.internalError, "cluster store: PostgreSQL did not answer within \(statementTimeout); nothing was acknowledged, send again")
        case .lost:
            return SignalingError(.internalError, "cluster store: the connection to PostgreSQL failed (\(Self.describe(error))); nothing was acknowledged, send again")
        }
    }

    /// What the writer's connection is opened with: its `statement_timeout` (milliseconds) and
    /// a name that tells its session apart in `pg_stat_activity`.
    static func startupParameters(statementTimeout: Duration) -> [(String, String)] {
        let milliseconds = max(1, Int(statementTimeout.components.seconds * 1000 + statementTimeout.components.attoseconds / 1_000_000_000_000_000))
        return [("statement_timeout", "\(milliseconds)"), ("application_name", applicationName)]
    }

    /// The writer's sessions' `application_name`.
    static let applicationName = "meshnode-writer"

    /// ``attempt(_:on:)``, once more on a new connection when the first one was lost (at most
    /// two attempts: a server that keeps dropping connections fails the batch).
    private func runAgainIfLost(_ batch: [Job], on connection: inout PostgresConnection?) async throws -> [Outcome] {
        do {
            return try await attempt(batch, on: &connection)
        } catch where Self.classify(error) == .lost {
            logger.warning("cluster store: the writer's connection was lost; writing its batch again on a new one",
                           metadata: ["error": "\(Self.describe(error))"])
            return try await attempt(batch, on: &connection)
        }
    }

    /// One try of `batch`, bounded: after a lost session or a missed deadline the connection is
    /// closed and dropped, so the next try opens a new one.
    private func attempt(_ batch: [Job], on connection: inout PostgresConnection?) async throws -> [Outcome] {
        let limit = statementTimeout + Self.clientGrace
        let current: PostgresConnection
        if let open = connection, !open.isClosed {
            current = open
        } else {
            if let stale = connection { Self.dispose(stale) }
            connection = nil
            current = try await Self.within(limit) { [connect] in
                let fresh = try await connect()
                // Came after the deadline: nobody will use it.
                if Task.isCancelled { Self.dispose(fresh) }
                return fresh
            }
            state.withLock { $0.opened += 1 }
            connection = current
        }
        do {
            return try await Self.within(limit) { [self] in try await run(batch, on: current) }
        } catch {
            if Self.classify(error) != .refused {
                connection = nil
                // Closing fails what postgres-nio still holds for this channel; a statement
                // whose promise it dropped stays abandoned (``within(_:_:)`` stopped waiting).
                Self.dispose(current)
            }
            throw error
        }
    }

    /// Closes `connection` and keeps it until it is closed: postgres-nio requires a connection
    /// to be closed before it is released.
    static func dispose(_ connection: PostgresConnection) {
        let closing: EventLoopFuture<Void> = connection.close()
        closing.whenComplete { _ in withExtendedLifetime(connection) {} }
    }

    /// `body`'s result, or ``Deadline`` once `limit` passed — without waiting for `body` to end:
    /// a task group would wait for a child that ignores cancellation (a dropped promise), and
    /// that is the hang this bounds. An abandoned `body` is cancelled and left to end alone.
    static func within<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let slot = Once<T>()
        return try await withCheckedThrowingContinuation { continuation in
            slot.set(continuation)
            let timer = Task {
                guard (try? await Task.sleep(for: limit)) != nil else { return }
                slot.resume(with: .failure(Deadline(limit: limit)))
            }
            slot.setWork(Task {
                do {
                    slot.resume(with: .success(try await body()))
                } catch {
                    slot.resume(with: .failure(error))
                }
                timer.cancel()
            })
        }
    }

    /// A continuation resumed once, by whichever of the work and the timer comes first; the
    /// timer's win cancels the work.
    private final class Once<T: Sendable>: Sendable {
        private struct State {
            var continuation: CheckedContinuation<T, any Error>?
            var work: Task<Void, Never>?
            var timedOut = false
        }
        private let state = Mutex(State())

        func set(_ continuation: CheckedContinuation<T, any Error>) {
            state.withLock { $0.continuation = continuation }
        }

        func setWork(_ work: Task<Void, Never>) {
            let late = state.withLock { state -> Bool in
                state.work = work
                return state.timedOut
            }
            if late { work.cancel() }
        }

        func resume(with result: Result<T, any Error>) {
            let (continuation, work) = state.withLock { state -> (CheckedContinuation<T, any Error>?, Task<Void, Never>?) in
                guard let continuation = state.continuation else { return (nil, nil) }
                state.continuation = nil
                if case .failure(let error) = result, error is Deadline {
                    state.timedOut = true
                    return (continuation, state.work)
                }
                return (continuation, nil)
            }
            continuation?.resume(with: result)
            work?.cancel()
        }
    }

    /// Writes `batch` with one statement; one answer per job, in order. Throws when the
    /// statement failed (nothing of the batch was written).
    private func run(_ batch: [Job], on connection: PostgresConnection) async throws -> [Outcome] {
        var statement = WriteBatch(now: Date().timeIntervalSince1970, recipientMessages: limits.recipientMessages,
                                   recipientBytes: limits.recipientBytes)
        for (index, job) in batch.enumerated() {
            switch job {
            case .chat(let chat):
                statement.jobs.append(index)
                statement.senders.append(chat.sender)
                statement.ids.append(chat.id)
                statement.frames.append(chat.frame)
                var seen = Set<String>()
                for recipient in chat.recipients where seen.insert(recipient).inserted {
                    statement.recipientJobs.append(index)
                    statement.recipients.append(recipient)
                }
            case .delivered(let recipient, let sender, let id, _):
                statement.ackRecipients.append(recipient)
                statement.ackSenders.append(sender)
                statement.ackIds.append(id)
            }
        }
        var duplicates = Set<Int>()
        var stored: [Int: [String]] = [:]
        var delivered = 0
        for try await (kind, job, recipient) in try await connection.execute(statement, logger: logger) {
            switch kind {
            case 0: duplicates.insert(job)
            case 1: stored[job, default: []].append(recipient ?? "")
            default: delivered = job
            }
        }
        var storedCount = 0
        var storedBytes = 0
        let answers: [Outcome] = batch.enumerated().map { index, job in
            guard case .chat(let chat) = job else { return .delivered }
            if duplicates.contains(index) { return .enqueued(.duplicate) }
            let fresh = stored[index] ?? []
            storedCount += fresh.count
            storedBytes += fresh.count * chat.frame.utf8.count
            if fresh.isEmpty, !chat.recipients.isEmpty {
                return .failed(SignalingError(.storeFull, "\(chat.recipients[0])'s queue is full (at most \(limits.recipientMessages) undelivered messages, \(limits.recipientBytes) bytes); nothing was stored, try again once recipients have read their messages"))
            }
            return .enqueued(.stored(fresh: fresh))
        }
        written(storedCount, storedBytes, delivered)
        return answers
    }
}

/// The writer's one statement (prepared once per connection): a batch of chat messages and of
/// recipients' acks. Rows out: `(0, job, NULL)` for a chat whose (sender, id) was stored before
/// (a resend: `duplicate`), `(1, job, recipient)` for each row stored, `(2, acks applied, NULL)`.
///
/// A recipient's bound (`recipientMessages`, `recipientBytes`) is checked against its queue as
/// committed plus the rows before it in the same batch (the window): a batch cannot take a
/// queue over its bound. A row of a resend to a new recipient is stored; one to a recipient
/// that has it already is left alone (`ON CONFLICT DO NOTHING`).
///
/// Each recipient's queue is counted through `messages_pending` (a lateral lookup per
/// recipient): written as one `IN (…)` over the batch's recipients, PostgreSQL's plan for a
/// batch of a few hundred scanned the whole table, delivered rows included (15–21 ms of a
/// 97 ms batch at 46,000 rows, growing with the table; bench/cluster/README.md, session 14).
struct WriteBatch: PostgresPreparedStatement {
    static let name = "meshnode_write_batch_v2"
    static let sql = """
        WITH jobs AS (SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[]) AS j(job, sender, id, frame)),
        dup AS (SELECT j.job FROM jobs j WHERE EXISTS (SELECT 1 FROM messages m WHERE m.sender = j.sender AND m.id = j.id)),
        wanted AS (SELECT j.job, j.sender, j.id, r.recipient, j.frame, octet_length(j.frame) AS size
                   FROM unnest($5::int8[], $6::text[]) AS r(job, recipient) JOIN jobs j USING (job)
                   WHERE j.job NOT IN (SELECT job FROM dup)),
        queued AS (SELECT r.recipient, q.n, q.bytes FROM (SELECT DISTINCT recipient FROM wanted) r
                   CROSS JOIN LATERAL (SELECT count(*) AS n, sum(octet_length(m.frame)) AS bytes FROM messages m
                                       WHERE m.recipient = r.recipient AND NOT m.delivered) q),
        fit AS (SELECT w.*, coalesce(q.n, 0) + row_number() OVER win AS n_after, coalesce(q.bytes, 0) + sum(w.size) OVER win AS bytes_after
                FROM wanted w LEFT JOIN queued q USING (recipient) WINDOW win AS (PARTITION BY w.recipient ORDER BY w.job)),
        ins AS (INSERT INTO messages (sender, id, recipient, frame, created)
                SELECT sender, id, recipient, frame, $7 FROM fit WHERE n_after <= $8 AND bytes_after <= $9 ORDER BY job
                ON CONFLICT DO NOTHING RETURNING sender, id, recipient),
        acked AS (UPDATE messages m SET delivered = true, frame = ''
                  FROM unnest($10::text[], $11::text[], $12::text[]) AS a(recipient, sender, id)
                  WHERE m.recipient = a.recipient AND m.sender = a.sender AND m.id = a.id AND NOT m.delivered RETURNING 1)
        SELECT 0::int8 AS kind, job, NULL::text AS recipient FROM dup
        UNION ALL SELECT 1, j.job, ins.recipient FROM ins JOIN jobs j ON j.sender = ins.sender AND j.id = ins.id
        UNION ALL SELECT 2, count(*), NULL FROM acked
        """

    var jobs: [Int] = []
    var senders: [String] = []
    var ids: [String] = []
    var frames: [String] = []
    var recipientJobs: [Int] = []
    var recipients: [String] = []
    var now: Double
    var recipientMessages: Int
    var recipientBytes: Int
    var ackRecipients: [String] = []
    var ackSenders: [String] = []
    var ackIds: [String] = []

    init(now: Double, recipientMessages: Int, recipientBytes: Int) {
        self.now = now
        self.recipientMessages = recipientMessages
        self.recipientBytes = recipientBytes
    }

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 12)
        bindings.append(jobs)
        bindings.append(senders)
        bindings.append(ids)
        bindings.append(frames)
        bindings.append(recipientJobs)
        bindings.append(recipients)
        bindings.append(now)
        bindings.append(recipientMessages)
        bindings.append(recipientBytes)
        bindings.append(ackRecipients)
        bindings.append(ackSenders)
        bindings.append(ackIds)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> (Int, Int, String?) {
        try row.decode((Int, Int, String?).self)
    }
}
