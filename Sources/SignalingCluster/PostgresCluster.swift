import Foundation
import Logging
import NIOCore
import PostgresNIO
import Signaling

/// A connection to a cluster's PostgreSQL database (`meshnode serve --cluster postgres://…
/// --member NAME`, docs/cluster.md): the shared store, and the router once the hub exists.
public final class PostgresCluster: Sendable {
    /// The store every member shares; give it to the hub.
    public let store: PostgresStore
    let client: PostgresClient
    let runner: Task<Void, Never>
    let logger: Logger

    /// What `--cluster` takes: `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=require]`.
    public struct Location: Sendable, Equatable {
        public var host: String
        public var port: Int
        public var user: String
        public var password: String?
        public var database: String
        public var tls: Bool

        /// Parses a `postgres://` (or `postgresql://`) URL; the reason says what is wrong.
        public static func parse(_ text: String) -> Result<Location, SignalingError> {
            func bad(_ why: String) -> Result<Location, SignalingError> {
                .failure(SignalingError(.badField, "cluster URL: \(why); expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"))
            }
            guard let url = URLComponents(string: text), ["postgres", "postgresql"].contains(url.scheme ?? "") else {
                return bad("not a postgres:// URL")
            }
            guard let host = url.host, !host.isEmpty else { return bad("no host") }
            guard let user = url.user, !user.isEmpty else { return bad("no user") }
            let database = String(url.path.drop(while: { $0 == "/" }))
            guard !database.isEmpty else { return bad("no database") }
            let mode = url.queryItems?.first(where: { $0.name == "sslmode" })?.value ?? "disable"
            guard ["disable", "require"].contains(mode) else { return bad("sslmode is disable or require") }
            return .success(Location(host: host, port: url.port ?? 5432, user: user, password: url.password, database: database,
                                     tls: mode == "require"))
        }
    }

    /// Connects, creates the tables if needed, and reads the store's usage. `writerTimeout`
    /// bounds each of the chat writer's statements (``PostgresWriter``, "Deadline"). `member`:
    /// this member's name, which its sessions carry as `application_name`
    /// (``applicationName(of:)``) so that the others can tell it has none left.
    public static func connect(_ location: Location, limits: StoreLimits, writerTimeout: Duration = .seconds(30),
                               member: String? = nil, logger: Logger) async throws(SignalingError) -> PostgresCluster {
        let tls: PostgresClient.Configuration.TLS = location.tls ? .require(.makeClientConfiguration()) : .disable
        var configuration = PostgresClient.Configuration(host: location.host, port: location.port, username: location.user,
                                                         password: location.password, database: location.database, tls: tls)
        configuration.options.connectTimeout = .seconds(5)
        if let member { configuration.options.additionalStartupParameters = [("application_name", applicationName(of: member))] }
        // Store calls, the publisher and the listener each hold one while they work.
        configuration.options.maximumConnections = 16
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        let runner = Task { await client.run() }
        // The writer's own connection (PostgresWriter): the same server and credentials.
        var single = PostgresConnection.Configuration(host: location.host, port: location.port, username: location.user,
                                                      password: location.password, database: location.database, tls: .disable)
        if location.tls {
            do {
                single.tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
            } catch {
                runner.cancel()
                throw SignalingError(.internalError, "cannot set up TLS for the cluster database: \(error)")
            }
        }
        single.options.connectTimeout = .seconds(5)
        single.options.additionalStartupParameters = PostgresWriter.startupParameters(statementTimeout: writerTimeout)
        let store = PostgresStore(client: client, connect: { [single, logger] in
            // The id only tells connections apart in the log.
            try await PostgresConnection.connect(configuration: single, id: 1, logger: logger)
        }, limits: limits, writerTimeout: writerTimeout, logger: logger)
        do {
            try await store.migrate()
        } catch {
            runner.cancel()
            throw SignalingError(.internalError, "cannot use the cluster database \(location.host):\(location.port)/\(location.database): \(error.reason)")
        }
        return PostgresCluster(store: store, client: client, runner: runner, logger: logger)
    }

    /// The `application_name` of a member's sessions (its listener's among them, which it
    /// holds while it runs): at most 48 characters, below PostgreSQL's 63.
    static func applicationName(of member: String) -> String { "meshnode-member " + member }

    init(store: PostgresStore, client: PostgresClient, runner: Task<Void, Never>, logger: Logger) {
        self.store = store
        self.client = client
        self.runner = runner
        self.logger = logger
    }

    /// The router of member `member` for `hub`; run it (``ClusterRouter/run()``) for the node's
    /// lifetime. `heartbeat` and `deadAfter`: see docs/cluster.md "Liveness".
    /// `url`: the member's `/ws` as clients reach it (`member-url`), told to clients at login.
    public func router(member: String, url: String? = nil, hub: SignalingHub, heartbeat: Duration = .seconds(1),
                       deadAfter: Duration = .seconds(10)) -> ClusterRouter {
        ClusterRouter(member: member, url: url, client: client, store: store, hub: hub, heartbeat: heartbeat, deadAfter: deadAfter, logger: logger)
    }

    /// Closes every connection to the database (the writer's once what it holds is written).
    public func close() {
        store.writer.close()
        runner.cancel()
    }
}
