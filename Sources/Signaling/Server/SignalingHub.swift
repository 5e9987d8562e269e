import Foundation
import Logging
import MeshCore

/// The rendezvous of one node (DESIGN.md "Signaling protocol"): it authenticates connections,
/// tracks who is online, routes presence, chat and call setup, and keeps chat in the
/// `SignalingStore` until it is acknowledged. One actor serialises all routing decisions.
public actor SignalingHub {
    /// What the hub knows about one connection.
    struct Session {
        let handle: ConnectionHandle
        var name: String?
        var key: String?
        /// The nonce the next `login` must sign; replaced after every attempt.
        var nonce: String
        /// When the connection opened: it must log in (or link) within `loginTimeout`.
        var opened: ContinuousClock.Instant
        var watching: Set<String> = []
        /// The other node's address when this connection is a node link.
        var node: String?
        /// For a device other than the name's owner: the owner's key and its endorsement of this
        /// key, which the node adds to this connection's call setup (SignalingHub+Devices.swift).
        var device: DeviceProof?
        /// Room calls this connection may start (docs/protocol.md "Room calls"): each start
        /// rings a whole room, so it is limited well below the frame rate.
        /// Made at the first start, on the hub's clock.
        var roomCallStarts: RateLimiter?
    }

    /// A call that rings: the node sends `timeout` if nobody answers in time.
    struct RingingCall {
        let caller: String
        let callee: String
        let timer: Task<Void, Never>
        /// The callee's connections it rings on (several devices, SignalingHub+Devices.swift).
        var devices: Set<Int> = []
    }

    let store: any SignalingStorage
    let configuration: HubConfiguration
    /// The STUN/TURN servers for `name` on `connection`: its host hint (the Host it dialled)
    /// and remote IP tell which addresses it can reach.
    let iceServers: @Sendable (_ name: String, _ connection: ConnectionHandle) -> [ICEServer]
    let logger: Logger
    /// The time liveness and rate limits are measured in.
    let now: @Sendable () -> ContinuousClock.Instant

    var sessions: [Int: Session] = [:]
    /// Logged-in name → its connections, one per key (several devices, docs/protocol.md "Devices").
    var online: [String: [Int]] = [:]
    /// The same as handles, for the chat fast path; changed only through ``setOnline(_:_:)``.
    let routes = ChatRoutes()
    /// Link codes and the claims of new devices (Devices/DeviceLinking.swift).
    var deviceLinking: DeviceLinking
    /// Which connection speaks for a name in a call (SignalingHub+Devices.swift), bounded.
    var callRoutes: [CallRoute: Int] = [:]
    /// Name → connections subscribed to its presence.
    var watchers: [String: Set<Int>] = [:]
    /// Ringing calls by (caller, callee, id), bounded (SignalingHub+Calls.swift).
    var calls: [RingingCall.Key: RingingCall] = [:]
    /// Running room calls by room, bounded (Server/SignalingHub+RoomCalls.swift).
    var roomCalls: [String: RoomCall] = [:]
    /// Forwarder sessions of other nodes, bounded (Server/SignalingHub+Forwarders.swift).
    var forwarders = ForwarderSessions()
    /// Room calls of other nodes' rooms as their hosts pushed them, by `#room@host`, bounded
    /// (Links/SignalingHub+RemoteRoomCalls.swift).
    var remoteRoomCalls: [String: RemoteRoomCall] = [:]
    /// Room calls hosted by other members of this cluster, as their states said (SignalingHub+ClusterRoomCalls.swift).
    var clusterRoomCalls: [String: RemoteRoomCall] = [:]
    /// Participants' calls to another member's forwarder: (caller, `forwarder`, call id) → that member (bounded).
    var clusterForwarderRoutes: [CallRoute: ClusterForwarderRoute] = [:]
    /// Participants' calls to a forwarder whose host is being read, with the messages held meanwhile (bounded).
    var clusterForwarderLookups: [CallRoute: [ClusterForwarderSetup]] = [:]
    /// Call-setup messages relayed within the freshness window, to refuse replays.
    var callFreshness = CallFreshness(capacity: SignalingHub.maxFreshCallMessages)
    /// The store write the frame being handled on a connection started (a chat, an ack): set
    /// and taken in the same turn of the hub, so it holds at most one entry per frame in hand.
    var writes: [Int: PendingWrite] = [:]
    /// Node address → the connection of the link to it.
    var links: [String: Int] = [:]
    /// Id of a message sent over a link → the local name that sent it, to route errors back.
    var forwarded: [String: String] = [:]
    /// Requests of local names relayed to the nodes that host their rooms, by name and id,
    /// bounded (Links/SignalingHub+RemoteRooms.swift).
    var roomRelays: [String: RoomRelay] = [:]
    /// The mesh as this node knows it (Mesh/SignalingHub+Mesh.swift); nil without a node identity.
    var mesh: MeshDirectory?
    /// This node's own current record, sent to every link that comes up.
    var ownRecord: SignedNodeRecord?
    var meshHooks: MeshHooks?
    /// `dialback` requests this node sent, by id, waiting for their `dialback-result`.
    var pendingDialbacks: [String: CheckedContinuation<DialbackResultBody?, Never>] = [:]
    /// When each link last had a `dialback` answered: at most one per `dialbackSpacing`.
    var dialbacksServed: [Int: ContinuousClock.Instant] = [:]
    /// Node address → the key its link proved, while the link is up.
    var linkKeys: [String: String] = [:]
    /// Which link connections proved which address, and the dial-backs that prove them
    /// (Links/LinkTrust.swift).
    var trust = LinkTrust()
    /// Log lines about one connection's misbehaviour, at most one per kind and interval.
    var logLimits = LogLimiter()
    private var nextConnectionID = 0
    /// Cluster mode (SignalingHub+Cluster.swift): the other members, and who is online there.
    var cluster: (any ClusterRouting)?
    var remoteOnline: [String: Set<String>] = [:]
    /// The members' `/ws` URLs, told to clients at login (`welcome.members`).
    var clusterURLs: [String] = []
    /// Set while the hub handles what another member sent: it is delivered here only.
    var fromCluster = false

    /// - Parameter now: the clock of the heartbeat and the rate limits; tests pass one they
    ///   advance by hand.
    public init(store: any SignalingStorage, configuration: HubConfiguration = HubConfiguration(), logger: Logger,
                now: @escaping @Sendable () -> ContinuousClock.Instant = { .now },
                iceServers: @escaping @Sendable (_ name: String, _ connection: ConnectionHandle) -> [ICEServer]) {
        self.store = store
        self.configuration = configuration
        self.logger = logger
        self.now = now
        self.iceServers = iceServers
        deviceLinking = DeviceLinking(now: now())
        if let own = configuration.nodeAddress, let identity = configuration.nodeIdentity {
            mesh = MeshDirectory(ownNode: own, ownKey: identity.publicKeyBase64, allowedKeys: configuration.meshKeys)
        }
    }

    /// Names logged in now.
    public var onlineNames: [String] { online.keys.sorted() }

    /// Registers a new connection and sends it a `challenge`.
    public func open(hostHint: String?, remoteIP: String? = nil, sink: AsyncStream<ConnectionHandle.Outbound>.Continuation) -> ConnectionHandle {
        open(hostHint: hostHint, remoteIP: remoteIP, sink: sink, silent: false)
    }

    /// Registers a connection that a channel handler serves (`/ws`) and sends it a `challenge`.
    public func open(hostHint: String?, remoteIP: String? = nil, output: any ConnectionOutput) -> ConnectionHandle {
        open(hostHint: hostHint, remoteIP: remoteIP, sink: .output(output), silent: false)
    }

    /// Registers a connection; `silent` skips the challenge (a link this node dialled).
    func open(hostHint: String?, remoteIP: String? = nil, sink: AsyncStream<ConnectionHandle.Outbound>.Continuation, silent: Bool) -> ConnectionHandle {
        open(hostHint: hostHint, remoteIP: remoteIP, sink: .stream(sink), silent: silent)
    }

    private func open(hostHint: String?, remoteIP: String?, sink: ConnectionHandle.Sink, silent: Bool) -> ConnectionHandle {
        nextConnectionID += 1
        let gate = ConnectionGate(limiter: RateLimiter(rate: configuration.rate, burst: configuration.burst, now: now()), now: now())
        let handle = ConnectionHandle(id: nextConnectionID, hostHint: hostHint, remoteIP: remoteIP, sink: sink, gate: gate)
        let nonce = Self.makeNonce()
        sessions[handle.id] = Session(handle: handle, nonce: nonce, opened: now())
        if !silent { handle.send(nodeMessage(to: "", .challenge(ChallengeBody(nonce: nonce)))) }
        return handle
    }

    /// One text frame from a connection. Returns once the frame is handled — for a chat or a
    /// recipient's ack, once its write has committed and been answered; that wait happens
    /// here, outside the hub's actor, which the commit does not enter again (issue 17).
    public nonisolated func receive(_ text: String, on connection: Int) async {
        if let write = await receiveFrame(text, on: connection) { await write.wait() }
    }

    /// ``receive(_:on:)`` on the actor: the write the frame started, if any.
    private func receiveFrame(_ text: String, on connection: Int) async -> PendingWrite? {
        guard let session = sessions[connection] else { return nil }
        guard session.handle.gate.admit(now: now()) else {
            logLimited(.warning, "connection over its rate limit: frames dropped", kind: "rate", connection: connection,
                       metadata: ["node": "\(session.node ?? "-")", "name": "\(session.name ?? "-")"])
            session.handle.send(errorMessage(SignalingError(.rateLimited, "more than \(Int(configuration.rate)) frames/s (burst \(Int(configuration.burst))); this frame was dropped",
                                                            of: SignalingCodec.peek(text)?.id), to: session.name))
            return nil
        }
        let message: SignalingMessage
        do {
            message = try SignalingCodec.decode(text)
        } catch {
            session.handle.send(errorMessage(decodeRefusal(error, text: text, session: session), to: session.name))
            return nil
        }
        await handle(message, on: connection)
        return writes.removeValue(forKey: connection)
    }

    /// A binary frame: protocol v1 has none.
    public func receiveBinary(on connection: Int) {
        guard let session = sessions[connection] else { return }
        session.handle.gate.touch(now: now())
        session.handle.send(errorMessage(SignalingError(.badFrame, "binary frames are not part of meshnode.v1; send JSON text frames"), to: session.name))
    }

    /// The connection ended (closed by the peer, by the network, or by the node).
    public func closed(_ connection: Int) {
        drop(connection)
    }

    /// Closes connections silent for more than 1.5 heartbeat intervals; run every quarter
    /// interval, it drops a dead connection within two intervals (docs/protocol.md "Liveness").
    public func sweep() {
        sweep(now: now())
    }

    /// ``sweep()`` as of `now`.
    public func sweep(now: ContinuousClock.Instant) {
        let limit = configuration.heartbeat * 3 / 2
        for (id, session) in sessions where now - session.handle.gate.lastSeen > limit {
            logger.info("dropping silent connection", metadata: ["connection": "\(id)", "name": "\(session.name ?? "-")"])
            drop(id)
        }
        // A connection that pings but never logs in would hold its slot for ever.
        for (id, session) in sessions where session.name == nil && session.node == nil && now - session.opened > configuration.loginTimeout
            && !deviceLinking.isClaiming(id) {
            logLimited(.info, "dropping a connection that did not log in", kind: "login-timeout", connection: nil)
            drop(id)
        }
        expireRecords()
        expireDeviceCodes(now: now)
        expireRoomCallParticipants(now: now)
        expireRemoteRoomCalls(now: now)
        expireClusterForwarderRoutes(now: now)
    }

    /// Runs `sweep` every quarter heartbeat until cancelled, and drops expired messages from
    /// the store once a minute.
    public func runSweeper() async {
        var pruned = now()
        while !Task.isCancelled {
            try? await Task.sleep(for: configuration.heartbeat / 4)
            sweep()
            if now() - pruned >= .seconds(60) {
                pruned = now()
                do { try await store.prune(olderThan: configuration.retention) } catch {
                    logger.error("cannot prune the store", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    /// Forgets a connection, closes it, and announces its name offline if it was the one online.
    func drop(_ connection: Int) {
        guard let session = sessions.removeValue(forKey: connection) else { return }
        // No more chat on the fast path from here on (SignalingHub+FastChat.swift).
        session.handle.gate.chatName = nil
        session.handle.close()
        dialbacksServed[connection] = nil
        forgetLink(connection)
        for name in session.watching { unwatch(name, by: connection) }
        if let node = session.node, links[node] == connection {
            linkDown(node)
        }
        forgetDevice(connection)
        forwarderDropped(connection, name: session.name)
        if let name = session.name, let devices = online[name], devices.contains(connection) {
            let rest = devices.filter { $0 != connection }
            setOnline(name, rest)
            // The name stays online while another of its devices is.
            if rest.isEmpty {
                publishPresence(name: name, status: .offline, key: session.device?.owner ?? session.key)
                if !isOnlineInCluster(name) { announce(name: name, status: .offline, key: session.device?.owner ?? session.key) }
            }
        }
    }

    // MARK: - Dispatch

    private func handle(_ message: SignalingMessage, on connection: Int) async {
        guard let session = sessions[connection] else { return }
        if let node = session.node {
            return await fromLink(message, node: node, on: connection)
        }
        guard let name = session.name, let key = session.key else {
            switch message.payload {
            case .login(let body): await login(body, id: message.id, on: connection)
            case .link(let body): await acceptLink(body, id: message.id, on: connection)
            case .prove(let body): answerProof(body, id: message.id, on: connection)
            case .device(.claim(let body)): await claimDevice(body, id: message.id, on: connection)
            case .ping: session.handle.send(nodeMessage(to: "", .pong, id: message.id))
            default: session.handle.send(errorMessage(SignalingError(.notLoggedIn, "log in first: answer the challenge with a login", of: message.id), to: nil))
            }
            return
        }
        guard message.from.isEmpty || message.from == name else {
            session.handle.send(errorMessage(SignalingError(.forbidden, "from is '\(message.from.prefix(40))' but this connection is logged in as \(name)", of: message.id), to: name))
            return
        }
        let reply = session.handle
        switch message.payload {
        case .ping: reply.send(nodeMessage(to: name, .pong, id: message.id))
        case .pong: forwarderPong(message.id, name: name, on: connection)
        case .login: reply.send(errorMessage(SignalingError(.badField, "already logged in as \(name)", of: message.id), to: name))
        case .subscribe(let body): await subscribe(body.names, id: message.id, on: connection, name: name)
        case .unsubscribe(let body): unsubscribe(body.names, id: message.id, on: connection, name: name)
        case .join(let body): await join(body.room, rule: body.rule, id: message.id, name: name, reply: reply)
        case .invite(let body): await invite(body, id: message.id, name: name, reply: reply)
        case .leave(let body): await leave(body.room, id: message.id, name: name, reply: reply)
        case .members(let body): await members(body.room, id: message.id, name: name, reply: reply)
        case .history(let body): await history(body, id: message.id, name: name, reply: reply)
        case .chat(let body): await chat(body, message: message, name: name, reply: reply)
        case .ack(let body): await recipientAck(body, name: name, reply: reply)
        case .callSetup(let type, let body): await callSetup(type, body, message: message, name: name, key: key, reply: reply)
        case .device(let device): await deviceMessage(device, id: message.id, name: name, key: key, on: connection)
        case .roomCall(.request(let body)): await roomCallRequest(body, message: message, name: name, key: key, on: connection)
        case .roomCall(.state): reply.send(errorMessage(SignalingError(.forbidden, "only the node sends room-call-state messages", of: message.id), to: name))
        case .challenge, .welcome, .presence, .room, .error, .timeout, .link, .linked, .mesh, .dialback, .dialbackResult, .prove, .proof:
            reply.send(errorMessage(SignalingError(.forbidden, "only the node sends \(message.type.rawValue) messages", of: message.id), to: name))
        }
    }

    // MARK: - Helpers

    nonisolated func nodeMessage(to: String, _ payload: SignalingPayload, id: String = NodeMessageID.next()) -> SignalingMessage {
        SignalingMessage(id: id, from: SignalingProtocol.nodeAddress, to: to, payload: payload)
    }

    nonisolated func errorMessage(_ error: SignalingError, to name: String?) -> SignalingMessage {
        nodeMessage(to: name ?? "", .error(ErrorBody(error)))
    }

    nonisolated func ack(_ id: String, _ status: AckStatus = .ok, to name: String) -> SignalingMessage {
        nodeMessage(to: name, .ack(AckBody(of: id, status: status)))
    }

    /// The connections a name is online on (one per device), nil when it is offline: what is
    /// sent to a name reaches every device of it.
    func handle(of name: String) -> DeviceConnections? {
        let handles = (online[name] ?? []).compactMap { sessions[$0]?.handle } + clusterHandles(of: name)
        return handles.isEmpty ? nil : DeviceConnections(handles: handles)
    }

    /// The link to a node, if it is up.
    func link(to node: String) -> ConnectionHandle? {
        links[node].flatMap { sessions[$0]?.handle }
    }

    /// An address as this node files it: a bare name for a local peer (also when written
    /// `name@<this node>`), `name@host:port` for a peer at another node; nil when invalid.
    nonisolated func normalise(_ address: String) -> String? {
        guard let parsed = Address.parse(address) else { return nil }
        // Any of this node's own addresses (its public host, a bind address) is this node.
        guard let node = parsed.node, node != configuration.nodeAddress, !configuration.authorities.contains(node) else { return parsed.name }
        return "\(parsed.name)@\(node)"
    }

    /// A local name qualified with this node's address, as other nodes see it; `toward` a node
    /// that dialled this one at another of its addresses (its public host), as that node does.
    func qualified(_ name: String, toward node: String? = nil) -> String {
        (node.flatMap(ownAddress(toward:)) ?? configuration.nodeAddress).map { "\(name)@\($0)" } ?? name
    }

    /// The address the node at `node` dialled this one at, when it is not the node address.
    func ownAddress(toward node: String) -> String? {
        links[node].flatMap { trust.links[$0]?.ownAddress }
    }

    /// Sends `message` to a local peer if online, or over the link to a remote peer's node.
    func route(_ message: SignalingMessage, to address: String) {
        if let node = Address.parse(address)?.node {
            link(to: node)?.send(message)
        } else {
            handle(of: address)?.send(message)
        }
    }

    static func makeNonce() -> String {
        Data(Sodium.randomBytes(32)).base64EncodedString()
    }
}
