import Foundation
import Logging
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
///   acknowledged) and resend the same ids later.
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

    let queueLimit: Int
    let limits: StoreLimits
    /// Opens the writer's connection (again, after one was lost).
    private let connect: @Sendable () async throws -> PostgresConnection
    private let logger: Logger
    private let state = Mutex(State())
    private let wake: AsyncStream<Void>.Continuation
    /// Told what each batch changed: messages stored (count, bytes) and acks applied.
    private let written: @Sendable (_ stored: Int, _ bytes: Int, _ delivered: Int) -> Void

    init(connect: @escaping @Sendable () async throws -> PostgresConnection, limits: StoreLimits, logger: Logger,
         written: @escaping @Sendable (_ stored: Int, _ bytes: Int, _ delivered: Int) -> Void) {
        self.connect = connect
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
        } catch let error as PSQLError where !Self.connectionLost(error) && batch.count > 1 {
            // PostgreSQL refused the statement and the connection is fine: find the write it
            // could not take by writing each alone.
            logger.warning("cluster store: a batch was refused; writing its \(batch.count) writes one by one",
                           metadata: ["error": "\(error.serverInfo?[.message] ?? "")"])
            answers = []
            for job in batch {
                do {
                    answers.append(try await runAgainIfLost([job], on: &connection)[0])
                } catch {
                    answers.append(.failed(Self.failure(error)))
                }
            }
        } catch {
            answers = Array(repeating: .failed(Self.failure(error)), count: batch.count)
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

    /// Whether `error` ended the session rather than refused a statement: no server answer at
    /// all, or SQLSTATE class 08 (connection exception) or 57 (operator intervention, e.g. the
    /// backend was terminated), or a FATAL/PANIC report (PostgreSQL docs, Appendix A).
    static func connectionLost(_ error: PSQLError) -> Bool {
        guard error.code == .server, let info = error.serverInfo else { return true }
        let state = info[.sqlState] ?? ""
        let severity = info[.severity] ?? info[.localizedSeverity] ?? ""
        return state.hasPrefix("08") || state.hasPrefix("57") || severity == "FATAL" || severity == "PANIC"
    }

    private static func failure(_ error: any Error) -> SignalingError {
        if let error = error as? PSQLError {
            if !connectionLost(error) {
                return SignalingError(.internalError, "cluster store: PostgreSQL refused the write: \(error.serverInfo?[.message] ?? "?"); nothing was stored")
            }
            return SignalingError(.internalError, "cluster store: the connection to PostgreSQL failed (\(error.serverInfo?[.message] ?? "\(error.code)")); nothing was acknowledged, send again")
        }
        return SignalingError(.internalError, "cluster store: \(error)")
    }

    /// ``run(_:on:)``, once more on a new connection when the first one was lost.
    private func runAgainIfLost(_ batch: [Job], on connection: inout PostgresConnection?) async throws -> [Outcome] {
        do {
            return try await run(batch, on: open(&connection))
        } catch let error as PSQLError where Self.connectionLost(error) {
            logger.warning("cluster store: the writer's connection was lost; writing its batch again on a new one",
                           metadata: ["error": "\(error.serverInfo?[.message] ?? "\(error.code)")"])
            try? await connection?.close()
            connection = nil
            return try await run(batch, on: open(&connection))
        }
    }

    /// The writer's connection, opened when there is none or PostgreSQL closed it.
    private func open(_ connection: inout PostgresConnection?) async throws -> PostgresConnection {
        if let current = connection, !current.isClosed { return current }
        let fresh = try await connect()
        state.withLock { $0.opened += 1 }
        connection = fresh
        return fresh
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
struct WriteBatch: PostgresPreparedStatement {
    static let name = "meshnode_write_batch_v1"
    static let sql = """
        WITH jobs AS (SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[]) AS j(job, sender, id, frame)),
        dup AS (SELECT j.job FROM jobs j WHERE EXISTS (SELECT 1 FROM messages m WHERE m.sender = j.sender AND m.id = j.id)),
        wanted AS (SELECT j.job, j.sender, j.id, r.recipient, j.frame, octet_length(j.frame) AS size
                   FROM unnest($5::int8[], $6::text[]) AS r(job, recipient) JOIN jobs j USING (job)
                   WHERE j.job NOT IN (SELECT job FROM dup)),
        queued AS (SELECT m.recipient, count(*) AS n, sum(octet_length(m.frame)) AS bytes FROM messages m
                   WHERE NOT m.delivered AND m.recipient IN (SELECT recipient FROM wanted) GROUP BY m.recipient),
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
