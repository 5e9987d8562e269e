import Foundation
import Logging
import PostgresNIO
@testable import SignalingCluster
import Signaling
import Synchronization
import Testing
import TestSupport

/// The PostgreSQL server these tests use: `MESHNODE_TEST_POSTGRES=postgres://USER@HOST:PORT/DB`,
/// set by `make test-cluster` (Tests/Cluster/cluster.py --run, which starts a private
/// PostgreSQL). Without it the suites are skipped: `make test` needs no database.
enum TestServer {
    static let url = ProcessInfo.processInfo.environment["MESHNODE_TEST_POSTGRES"]
    static var available: Bool { url != nil }
    static let skipped: Comment = "needs PostgreSQL: run `make test-cluster` (it starts one and sets MESHNODE_TEST_POSTGRES)"
}

/// A fresh database of its own for one test on the test server, a store on it, and an admin
/// connection that plays the other sessions (a lock holder, an operator who kills a backend).
final class TestDatabase: Sendable {
    let location: PostgresCluster.Location
    let cluster: PostgresCluster
    let admin: PostgresClient
    private let adminRunner: Task<Void, Never>
    let logger: Logger

    var store: PostgresStore { cluster.store }

    static func make(limits: StoreLimits = StoreLimits(), writerTimeout: Duration = .seconds(30)) async throws -> TestDatabase {
        guard let url = TestServer.url, case .success(let server) = PostgresCluster.Location.parse(url) else {
            throw TestFailure("MESHNODE_TEST_POSTGRES is not a postgres:// URL")
        }
        var logger = Logger(label: "cluster-test")
        logger.logLevel = .warning
        let name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
        let setup = Self.client(server, logger: logger)
        let setupRunner = Task { await setup.run() }
        try await setup.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: logger)
        setupRunner.cancel()
        var location = server
        location.database = String(name)
        let cluster = try await PostgresCluster.connect(location, limits: limits, writerTimeout: writerTimeout, logger: logger)
        let admin = Self.client(location, logger: logger)
        return TestDatabase(location: location, cluster: cluster, admin: admin, adminRunner: Task { await admin.run() }, logger: logger)
    }

    private init(location: PostgresCluster.Location, cluster: PostgresCluster, admin: PostgresClient, adminRunner: Task<Void, Never>, logger: Logger) {
        self.location = location
        self.cluster = cluster
        self.admin = admin
        self.adminRunner = adminRunner
        self.logger = logger
    }

    static func client(_ location: PostgresCluster.Location, logger: Logger) -> PostgresClient {
        PostgresClient(configuration: .init(host: location.host, port: location.port, username: location.user, password: location.password,
                                            database: location.database, tls: .disable), backgroundLogger: logger)
    }

    deinit {
        adminRunner.cancel()
        cluster.close()
    }

    /// One integer from `sql`, run as the admin (bounded: ``bounded(_:limit:_:)``).
    func count(_ sql: String) async throws -> Int {
        try await bounded("an answer to \(sql)") { [admin, logger] in
            for try await row in try await admin.query(PostgresQuery(unsafeSQL: sql), logger: logger) {
                return try row.decode(Int.self)
            }
            throw TestFailure("no row from \(sql)")
        }
    }

    /// Runs `sql` as the admin, ignoring its rows (bounded: ``bounded(_:limit:_:)``).
    func execute(_ sql: String) async throws {
        try await bounded("\(sql) to run") { [admin, logger] in
            for try await _ in try await admin.query(PostgresQuery(unsafeSQL: sql), logger: logger) {}
        }
    }

    /// Holds `messages` locked (EXCLUSIVE: reads pass, every write waits) until `release` is
    /// called: PostgreSQL made slow for certain, without timing.
    func lockMessages() async throws -> TableLock {
        let lock = TableLock()
        let locked = AsyncStream<Void>.makeStream()
        let task = Task { [admin, logger] in
            try await admin.withTransaction(logger: logger) { connection in
                try await connection.query("LOCK TABLE messages IN EXCLUSIVE MODE", logger: logger)
                locked.continuation.yield()
                await lock.waitForRelease()
            }
        }
        lock.hold(task)
        try await bounded("the lock on messages") {
            var iterator = locked.stream.makeAsyncIterator()
            _ = await iterator.next()
        }
        return lock
    }

    /// The backend pid of this database's writer session (its `application_name`), waiting
    /// for a lock when `blocked`. Only this test's database counts: other tests' sessions on
    /// the same server are never taken for it.
    func writerBackend(blocked: Bool = true, not earlier: Int = 0) async throws -> Int {
        let name = PostgresWriter.applicationName
        let waiting = blocked ? "AND wait_event_type = 'Lock'" : ""
        return try await waitFor("the writer's session\(blocked ? " waiting for the lock" : "")") {
            try await bounded("pg_stat_activity") { [admin, logger] in
                for try await row in try await admin.query(PostgresQuery(unsafeSQL: """
                    SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = '\(name)'
                    \(waiting) AND pid <> \(earlier)
                    """), logger: logger) {
                    return try row.decode(Int.self)
                }
                return nil
            }
        }
    }

    /// The writer's session blocked on the lock (``writerBackend(blocked:not:)``).
    func blockedWriter(not earlier: Int = 0) async throws -> Int {
        try await writerBackend(blocked: true, not: earlier)
    }
}

/// A lock on `messages` held by the admin session until released.
final class TableLock: Sendable {
    private let holder = Mutex<Task<Void, any Error>?>(nil)
    private let stream = AsyncStream<Void>.makeStream()

    func hold(_ task: Task<Void, any Error>) {
        holder.withLock { $0 = task }
    }

    func waitForRelease() async {
        for await _ in stream.stream {}
    }

    /// Ends the lock holder's transaction; returns once it committed.
    func release() async throws {
        stream.continuation.finish()
        guard let task = holder.withLock({ $0 }) else { return }
        try await bounded("the lock holder's commit") { try await task.value }
    }
}

/// A chat write's answer, collected from the writer's callback; when none came within `limit`,
/// a failure that says so (a writer that hangs fails the test instead of hanging it).
func chat(_ store: PostgresStore, sender: String, id: String, to recipients: [String], frame: String,
          limit: Duration = TestBound.answer) async -> Result<SignalingStore.Enqueued, SignalingError> {
    do {
        return try await bounded("the writer's answer to \(id)", limit: limit) {
            await withCheckedContinuation { continuation in
                store.enqueueChat(sender: sender, id: id, recipients: recipients, frame: frame) { continuation.resume(returning: $0) }
            }
        }
    } catch {
        return .failure(SignalingError(.internalError, "TEST: \(error)"))
    }
}

/// How long these tests wait for one answer (a batch or a query): seconds on a loaded machine.
enum TestBound {
    static let answer: Duration = .seconds(20)
}

/// `body`'s result, or ``TestTimeout`` after `limit` — without waiting for `body` to end.
/// `withTimeout` (a task group) waits for its child, so an await that ignores cancellation
/// (a continuation nobody resumes) hangs it and the suite's `.timeLimit` with it: the hang
/// this suite once had.
func bounded<T: Sendable>(_ what: String, limit: Duration = TestBound.answer, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let slot = ContinuationSlot<T>()
    return try await withCheckedThrowingContinuation { continuation in
        slot.value.withLock { $0 = continuation }
        let work = Task {
            let result: Result<T, any Error>
            do { result = .success(try await body()) } catch { result = .failure(error) }
            slot.value.withLock { $0.take() }?.resume(with: result)
        }
        Task {
            try? await Task.sleep(for: limit)
            if let waiting = slot.value.withLock({ $0.take() }) {
                work.cancel()
                waiting.resume(throwing: TestTimeout(what: what, limit: limit))
            }
        }
    }
}

/// The continuation ``bounded(_:limit:_:)`` resumes once.
final class ContinuationSlot<T: Sendable>: Sendable {
    let value = Mutex<CheckedContinuation<T, any Error>?>(nil)
}
