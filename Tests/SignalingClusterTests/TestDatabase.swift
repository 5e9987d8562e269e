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

    static func make(limits: StoreLimits = StoreLimits()) async throws -> TestDatabase {
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
        let cluster = try await PostgresCluster.connect(location, limits: limits, logger: logger)
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

    /// One integer from `sql`, run as the admin.
    func count(_ sql: String) async throws -> Int {
        for try await row in try await admin.query(PostgresQuery(unsafeSQL: sql), logger: logger) {
            return try row.decode(Int.self)
        }
        throw TestFailure("no row from \(sql)")
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
        var iterator = locked.stream.makeAsyncIterator()
        _ = await iterator.next()
        lock.hold(task)
        return lock
    }

    /// The backend pid of a session running the writer's statement that waits for a lock.
    func blockedWriter(not earlier: Int = 0) async throws -> Int {
        try await waitFor("the writer's statement waiting for the lock") {
            for try await row in try await admin.query("""
                SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'WITH jobs AS%' AND pid <> \(earlier)
                """, logger: logger) {
                return try row.decode(Int.self)
            }
            return nil
        }
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
        try await holder.withLock { $0 }?.value
    }
}

/// A chat write's answer, collected from the writer's callback.
func chat(_ store: PostgresStore, sender: String, id: String, to recipients: [String], frame: String) async -> Result<SignalingStore.Enqueued, SignalingError> {
    await withCheckedContinuation { continuation in
        store.enqueueChat(sender: sender, id: id, recipients: recipients, frame: frame) { continuation.resume(returning: $0) }
    }
}
