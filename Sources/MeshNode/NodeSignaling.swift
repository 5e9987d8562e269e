import Foundation
import Hummingbird
import ICE
import Logging
import NIOCore
import ServiceLifecycle
import Signaling
import SignalingCluster
import Synchronization
import STUN
import TURNServer

/// The signaling part of a node (DESIGN.md "Signaling protocol"): the store, the hub, the
/// `/ws` endpoint, and a service that runs the heartbeat sweeper and closes the store on
/// shutdown.
struct NodeSignaling: Sendable {
    let hub: SignalingHub
    let store: any SignalingStorage
    /// Cluster mode (docs/cluster.md): the router to the other members, nil for a single node.
    let cluster: ClusterRouter?
    let endpoint: SignalingEndpoint
    let links: [NodeLink]
    let mesh: MeshService

    /// Lifetime of the TURN REST credentials handed out at login, in seconds. A client gets new
    /// ones at every login.
    static let credentialLifetime = 3600

    static func make(configuration: NodeConfiguration, turn: TURNServer, restSecret: String, credentials: MeshCredentials,
                     logger: Logger) async throws -> NodeSignaling {
        let store: any SignalingStorage
        var postgres: PostgresCluster?
        if let url = configuration.signaling.cluster {
            // Cluster mode: the store is shared in PostgreSQL; SQLite is not opened.
            guard configuration.signaling.member != nil else {
                throw NodeConfigurationError(key: "member", reason: "cluster mode needs a member name unique among the members (--member NAME)")
            }
            do {
                let location = try PostgresCluster.Location.parse(url).get()
                let connected = try await PostgresCluster.connect(location, limits: configuration.signaling.storeLimits,
                                                                     member: configuration.signaling.member, logger: logger)
                postgres = connected
                store = connected.store
            } catch {
                throw NodeConfigurationError(key: "cluster", reason: error.reason)
            }
        } else {
            do {
                store = try await SignalingStore.open(directory: configuration.signaling.dataDirectory,
                                                      limits: configuration.signaling.storeLimits, logger: logger)
            } catch {
                throw NodeConfigurationError(key: "data-dir", reason: error.reason)
            }
        }
        var hubConfiguration = HubConfiguration()
        hubConfiguration.heartbeat = configuration.signaling.heartbeat
        hubConfiguration.loginTimeout = configuration.signaling.loginTimeout
        let identity = credentials.identity
        // One notion of the node's own addresses for logins, links and welcome (NodePublicIdentity).
        let publicIdentity = NodePublicIdentity(configuration)
        let address = publicIdentity.nodeAddress
        hubConfiguration.nodeAddress = address
        hubConfiguration.nodeIdentity = identity
        hubConfiguration.meshKeys = configuration.signaling.meshKeys
        hubConfiguration.authorities = publicIdentity.authorities
        hubConfiguration.defaultRoomRule = configuration.signaling.roomRule
        hubConfiguration.roomCallMeshLimit = configuration.signaling.roomCallMeshLimit
        hubConfiguration.forwarder = configuration.signaling.forwarder
        hubConfiguration.forwarderKeys = configuration.signaling.forwarderKeys
        try? await store.prune(olderThan: hubConfiguration.retention)
        // The hub needs the ICE servers before the mesh service (which needs the hub) exists.
        let meshReference = Mutex<MeshService?>(nil)
        let hub = SignalingHub(store: store, configuration: hubConfiguration, logger: logger) { name, connection in
            let own = iceServers(listeners: turn.listeners, secret: restSecret, name: name, identity: publicIdentity,
                                 clientIP: connection.remoteIP, hostHint: connection.hostHint)
            return meshReference.withLock { $0 }?.iceServers(own: own, name: name, lifetime: credentialLifetime) ?? own
        }
        let mesh = MeshService(hub: hub, turn: turn, credentials: credentials, address: address,
                               interval: configuration.signaling.gossipInterval, logger: logger)
        meshReference.withLock { $0 = mesh }
        let links = configuration.signaling.links.map {
            NodeLink(url: $0, hub: hub, identity: identity, nodeAddress: address, tls: configuration.signaling.linkTLS, logger: logger)
        }
        logger.info("signaling ready", metadata: ["node": "\(address)", "node-key": "\(identity.publicKeyBase64)", "links": "\(links.count)"])
        let endpoint = SignalingEndpoint(hub: hub, limit: turn.configuration.connectionBudget ?? ConnectionLimit(maximum: configuration.signaling.maxConnections),
                                         origins: OriginPolicy(allowed: configuration.signaling.allowedOrigins),
                                         sources: SourceLimit(maximum: configuration.signaling.maxConnectionsPerIP))
        let cluster = configuration.signaling.member.flatMap { member in postgres?.router(member: member, url: configuration.signaling.memberURL, hub: hub) }
        return NodeSignaling(hub: hub, store: store, cluster: cluster, endpoint: endpoint, links: links, mesh: mesh)
    }

    /// The node's Ed25519 identity for links; made on first start when the file is missing.
    static func nodeIdentity(path: String) throws -> Identity {
        do {
            if FileManager.default.fileExists(atPath: path) { return try IdentityFile.load(from: path) }
            return try IdentityFile.create(at: path)
        } catch {
            throw NodeConfigurationError(key: "node-key", reason: error.reason)
        }
    }

    /// `GET /ws` without a WebSocket upgrade: 426 with a hint.
    func addRoutes(to router: Router<NodeRequestContext>) {
        router.get(RouterPath(stringLiteral: SignalingProtocol.path)) { _, _ in
            Response(status: .upgradeRequired, headers: [.contentType: "text/plain; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: SignalingEndpoint.upgradeRequiredText)))
        }
    }

    var service: some Service { SignalingService(hub: hub, store: store, cluster: cluster, links: links, mesh: mesh) }

    /// `GET /mesh`: the mesh as this node sees it (`MeshStatus`, JSON).
    func addMeshRoute(to router: Router<NodeRequestContext>) {
        let mesh = mesh
        router.get("/mesh") { _, _ in
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
            let data = (try? encoder.encode(await mesh.status())) ?? Data("{}".utf8)
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
    }

    /// STUN and TURN URLs of the node's listeners (RFC 7064, RFC 7065) with TURN REST
    /// credentials for `name`, naming only hosts the client can reach
    /// (``NodePublicIdentity/iceHost(listener:clientIP:hostHint:)``); each URL once.
    static func iceServers(listeners: [TURNServer.Listener], secret: String, name: String, identity: NodePublicIdentity,
                           clientIP: String?, hostHint: String?) -> [ICEServer] {
        var stun: [String] = []
        var turn: [String] = []
        for listener in listeners {
            guard let ip = IPAddress(listener.address),
                  let host = identity.iceHost(listener: ip, clientIP: clientIP, hostHint: hostHint) else { continue }
            for uri in listener.iceServerURIs(host: host) {
                let text = uri.description
                if uri.scheme.isTURN {
                    if !turn.contains(text) { turn.append(text) }
                } else if !stun.contains(text) {
                    stun.append(text)
                }
            }
        }
        let credentials = TURNRESTCredentials(secret: secret, id: name, lifetime: credentialLifetime)
        var servers: [ICEServer] = []
        if !stun.isEmpty { servers.append(ICEServer(urls: stun)) }
        if !turn.isEmpty { servers.append(ICEServer(urls: turn, username: credentials.username, credential: credentials.password)) }
        return servers
    }

    /// A secret for TURN REST credentials when none is configured: 32 random bytes, base64.
    static func randomSecret() -> String {
        Data(Digest.randomBytes(32)).base64EncodedString()
    }
}

/// Runs the hub's heartbeat sweeper, the node links and the mesh until graceful shutdown;
/// then tells the mesh this node leaves and closes the store.
struct SignalingService: Service {
    let hub: SignalingHub
    let store: any SignalingStorage
    let cluster: ClusterRouter?
    let links: [NodeLink]
    let mesh: MeshService

    func run() async throws {
        let (hub, links, mesh) = (hub, links, mesh)
        // A member that loses PostgreSQL cannot act as part of the node: its error ends the
        // node, and its clients reconnect to another member (docs/cluster.md).
        let routing = cluster.map { cluster in Task.detached { try await cluster.run() } }
        // Detached: the links' WebSocket clients would otherwise see the graceful shutdown
        // (a task local) and close before the leaving record is out.
        let work = Task.detached {
            await withDiscardingTaskGroup { group in
                group.addTask { await hub.runSweeper() }
                group.addTask { await mesh.run() }
                for link in links { group.addTask { await link.run() } }
            }
        }
        // Until SIGTERM (or cancellation); the leaving record goes out while links are still up.
        if let routing {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await routing.value }
                group.addTask { try? await gracefulShutdown() }
                try await group.next()
                group.cancelAll()
                await cluster?.leave()
                routing.cancel()
            }
        } else {
            try? await gracefulShutdown()
        }
        await mesh.leave()
        work.cancel()
        await work.value
        await store.close()
    }
}
