import Foundation
import ICE
import Logging
import Media
import NIOCore
import Signaling
import STUN

/// A headless participant (DESIGN.md "Roles"): its identity and signaling client at its home
/// node, the ICE servers the node hands out, and its calls — placed with ``call(_:kind:)`` or
/// answered by the ``AcceptPolicy``.
public actor Peer {
    /// How incoming calls are answered.
    public enum AcceptPolicy: String, Sendable {
        /// Accept every call (while no other call runs).
        case auto
        /// Report ``PeerEvent/incomingCall(_:)`` and wait for ``accept(_:)`` or ``decline(_:reason:)``.
        case ask
        /// Answer `busy`.
        case never
    }

    public nonisolated let client: SignalingClient
    /// Everything that happens: signaling events, incoming calls, calls starting and ending.
    public nonisolated let events: AsyncStream<PeerEvent>
    private let sink: AsyncStream<PeerEvent>.Continuation
    public let options: CallOptions
    public var acceptPolicy: AcceptPolicy
    private let logger: Logger
    private var iceServers: [ICEServer] = []
    /// The measurement of the relays of the last `welcome`, while it runs.
    private var ranking: Task<Void, Never>?
    private var calls: [String: Call] = [:]
    /// Incoming calls waiting for ``accept(_:)`` (policy `ask`), with when they arrived; at most
    /// ``maxRinging``, each forgotten after the longest ring time.
    private var ringing: [String: (payload: CallPayload, since: ContinuousClock.Instant)] = [:]
    /// (sender, call, type) of refused call-setup messages already logged, so that a flood
    /// logs each once; cleared when it reaches 1024.
    private var refusedLogged: Set<String> = []
    private var loop: Task<Void, Never>?
    /// Watches this host's addresses (``CallOptions/watchNetwork``).
    private var monitor: NetworkMonitor?
    private var monitorTask: Task<Void, Never>?
    /// The local address the signaling connection left from: the kernel's source address toward
    /// the node when it logged in (a TCP connection keeps the address it was made from).
    private var signalingSource: IPAddress?
    /// The latest state of the room call of each room this name is in (docs/rooms.md), by room;
    /// at most ``maxKnownRoomCalls`` (a name is in at most 100 rooms at its node).
    private var roomCalls: [String: RoomCallState] = [:]
    /// The room call this peer takes part in, by room and id.
    private var ownRoomCall: (room: String, call: String)?
    /// The pairwise call with each other participant of ``ownRoomCall``, by its name.
    private var roomCallPairs: [String: String] = [:]
    /// When ``ownRoomCall`` is forwarded: this peer's call to the forwarder (docs/protocol.md
    /// "Room calls", *Forwarded mode*).
    private var forwarderCall: String?
    /// The forwarder ``forwarderCall`` goes to, as the verified assignment named it: another
    /// one in a later state means the node moved the call (its forwarder died).
    private var forwarderTarget: RoomCallForwarder?
    static let maxKnownRoomCalls = 128
    /// How long pairwise calls stay up after the move to a forwarder when the forwarder's media
    /// does not come (then they end anyway: the forwarded call carries the room from now on).
    static let pairwiseOverlap: Duration = .seconds(10)

    public init(client: SignalingClient, options: CallOptions = CallOptions(), acceptPolicy: AcceptPolicy = .never,
                logger: Logger = Logger(label: "meshnode.peer")) {
        self.client = client
        self.options = options
        self.acceptPolicy = acceptPolicy
        self.logger = logger
        (events, sink) = AsyncStream.makeStream(of: PeerEvent.self)
    }

    /// Logs in (the client then reconnects on its own) and starts answering.
    @discardableResult
    public func connect() async throws -> WelcomeBody {
        let client = self.client
        loop = Task { [weak self] in
            for await event in client.events {
                await self?.handle(event)
            }
            await self?.finish()
        }
        let welcome = try await client.connect()
        serversChanged(welcome.iceServers)
        await signalingConnected()
        watchNetwork()
        return welcome
    }

    /// Places a call and returns at once; follow it through ``Call/states``. `room` and
    /// `roomCall` tag a pairwise call of a room call (docs/rooms.md).
    public func call(_ address: String, kind: CallKind, ring: Int? = nil, room: String? = nil, roomCall: String? = nil) async throws -> Call {
        try await call(address, kind: kind, ring: ring, room: room, roomCall: roomCall, remoteKey: nil, forwarded: false)
    }

    /// Places a call; `remoteKey` binds it to the key the callee must sign with (a forwarder's,
    /// from its verified assignment) before anything comes back.
    private func call(_ address: String, kind: CallKind, ring: Int?, room: String?, roomCall: String?, remoteKey: String?,
                      forwarded: Bool) async throws -> Call {
        let id = UUID().uuidString
        await relaysRanked()
        let call = try Call(id: id, remote: address, remoteKey: remoteKey, kind: kind, isCaller: true, forwarded: forwarded, client: client,
                            options: options, iceServers: iceServers, logger: logger)
        register(call)
        do {
            var payload = CallPayload(type: .call, from: client.name, to: address, call: id, kind: kind, ring: ring, ts: Date().timeIntervalSince1970)
            payload.room = room
            payload.roomCall = roomCall
            try await client.callSetup(payload)
        } catch {
            await call.end("the call request failed: \(error)", failed: true)
            throw error
        }
        return call
    }

    /// Accepts a ringing call (policy `ask`).
    @discardableResult
    public func accept(_ callID: String) async throws -> Call? {
        guard let payload = ringing.removeValue(forKey: callID)?.payload else { return nil }
        return try await answer(payload)
    }

    /// Declines a ringing call.
    public func decline(_ callID: String, reason: String = "declined") async {
        guard let payload = ringing.removeValue(forKey: callID)?.payload else { return }
        try? await client.callSetup(.reject, to: payload.from, call: payload.call, reason: reason)
    }

    /// Hangs up every call and leaves the node.
    public func close() async {
        monitor?.stop()
        monitorTask?.cancel()
        // Out of the room call at once, not after the node's grace for a vanished participant.
        await leaveRoomCall()
        for call in calls.values { await call.hangup() }
        await client.close()
    }

    // MARK: - Events

    private func handle(_ event: SignalingEvent) async {
        sink.yield(.signaling(event))
        switch event {
        case .connected(let welcome):
            serversChanged(welcome.iceServers)
            await signalingConnected()
        case .reconnected(let welcome):
            serversChanged(welcome.iceServers)
            await signalingConnected()
            for call in calls.values { await call.signalingReconnected() }
            await rejoinRoomCall()
        case .callSetup(let payload):
            await route(payload)
        case .callTimeout(let id):
            ringing[id] = nil
            await calls[id]?.timedOut()
        case .answeredElsewhere(let id):
            // Another device of this name took it: stop asking; a call not yet connected here ends.
            ringing[id] = nil
            await calls[id]?.timedOut()
        case .roomCall(let state):
            await roomCallChanged(state)
        default:
            break
        }
    }

    // MARK: - This host's network

    private func watchNetwork() {
        guard options.watchNetwork, monitor == nil else { return }
        do {
            let monitor = try NetworkMonitor(logger: logger)
            self.monitor = monitor
            monitorTask = Task { [weak self] in
                for await change in monitor.changes { await self?.networkChanged(change) }
            }
        } catch {
            logger.notice("address changes are not watched: \(error.reason); a moved call recovers after 3 s of silence")
        }
    }

    /// Notes which local address the new signaling connection uses.
    private func signalingConnected() async {
        let authority = client.nodeAuthority
        signalingSource = await Task.detached { Self.sourceAddress(towardNode: authority) }.value
    }

    /// The address the kernel picks now to reach the node at `authority` (`host:port`,
    /// `[v6]:port` or `host`), resolving a name as the ICE servers' are.
    static func sourceAddress(towardNode authority: String) -> IPAddress? {
        var host = Substring(authority)
        if host.hasPrefix("["), let end = host.firstIndex(of: "]") {
            host = host[host.index(after: host.startIndex)..<end]
        } else if host.filter({ $0 == ":" }).count == 1, let colon = host.lastIndex(of: ":") {
            host = host[..<colon]
        }
        guard let address = ICEServerSettings.resolve(String(host)).flatMap({ IPAddress(string: $0) }) else { return nil }
        return RouteLookup.sourceAddress(toward: address)
    }

    /// This host's network changed (docs/calls.md "This side's network changed"). If the
    /// signaling connection's address went away, it is replaced at once (the node's heartbeat
    /// would notice only after tens of seconds); calls whose path used a lost address restart
    /// with a fresh agent, once the new signaling connection is up. While offline, a new
    /// address or default route makes the next login attempt go now.
    private func networkChanged(_ change: NetworkChange) async {
        let online = await client.isOnline
        let signalingLost = signalingSource.map(change.removed.contains) ?? false
        let message: Logger.Message = "network changed: \(change)\(signalingLost ? "; the signaling connection's address is gone" : "")"
        if signalingLost || !calls.isEmpty { logger.info(message) } else { logger.debug(message) }
        // The calls first, so that the reconnect they wait for cannot overtake them.
        for call in calls.values { await call.networkChanged(change, awaitSignaling: signalingLost || !online) }
        if signalingLost, let source = signalingSource {
            signalingSource = nil
            await client.reconnectNow(reason: "its local address \(source) went away")
        } else if !online, !change.added.isEmpty || change.defaultRouteChanged {
            await client.reconnectNow(reason: "the network changed")
        } else if change.eventsLost {
            await client.probe(within: .seconds(1))
        }
    }

    // MARK: - Call setup in

    /// Hands a verified call-setup message to its call — only if it comes from that call's
    /// other party, by address and key (``Call/isFromOtherParty(_:)``). Everything else (a third
    /// party's offer or hangup, a message for a call id this peer does not have) is refused:
    /// reported as ``PeerEvent/refused(_:reason:)``, logged once, and not acted on.
    private func route(_ payload: CallPayload) async {
        if let call = calls[payload.call] {
            guard await call.handle(payload) else {
                return refuse(payload, "not from \(call.remote) with the key call \(call.id.prefix(64)) is bound to")
            }
        } else if let ring = ringing[payload.call] {
            guard payload.type == .cancel, Self.sameSender(ring.payload, payload, client: client) else {
                return refuse(payload, "call \(payload.call.prefix(64)) rings from \(ring.payload.from); only its cancel is taken")
            }
            ringing[payload.call] = nil
        } else if payload.type == .call {
            await incoming(payload)
        } else {
            refuse(payload, "no call \(payload.call.prefix(64)) here")
        }
    }

    /// Whether two verified messages come from the same address with the same key.
    static func sameSender(_ first: CallPayload, _ second: CallPayload, client: SignalingClient) -> Bool {
        client.pinAddress(of: first.from) == client.pinAddress(of: second.from) && first.key != nil && first.key == second.key
    }

    private func refuse(_ payload: CallPayload, _ reason: String) {
        if refusedLogged.count >= 1024 { refusedLogged.removeAll() }
        let (first, _) = refusedLogged.insert("\(payload.from)\n\(payload.call)\n\(payload.type.rawValue)")
        if first {
            logger.warning("refused a call-setup message", metadata: ["type": "\(payload.type.rawValue)", "from": "\(payload.from)", "reason": "\(reason)"])
        }
        sink.yield(.refused(payload, reason: reason))
    }

    // MARK: - Relay choice

    /// Takes the node's list at once, then measures the relays in the background (DESIGN.md
    /// "Data flow of one call" step 3, docs/mesh.md "Relay choice").
    private func serversChanged(_ servers: [ICEServer]) {
        iceServers = servers
        guard servers.filter({ $0.urls.contains { $0.hasPrefix("turn") } }).count > 1 else { return }
        ranking = Task { [weak self] in
            let ranked = await Self.rankRelays(servers)
            await self?.rankedServers(ranked, from: servers)
        }
    }

    /// Waits for a measurement still running (at most `probes × timeout` of ``rankRelays(_:)``,
    /// 800 ms), so that a call placed or answered right after login gets the nearest relays
    /// and not every relay of the node's list.
    private func relaysRanked() async {
        await ranking?.value
    }

    private func rankedServers(_ ranked: [ICEServer], from original: [ICEServer]) {
        // Only if the node has not sent a newer list meanwhile.
        guard iceServers == original else { return }
        iceServers = ranked
        logger.info("relays by round trip: \(ranked.compactMap { $0.urls.first { $0.hasPrefix("turn") } }.joined(separator: ", "))")
    }

    /// How many relays (ICE server entries with TURN) a call's agent gets: two, so that when the
    /// one carrying a call dies, an ICE restart finds the other already allocated.
    static let relaysPerCall = 2

    /// Orders the entries that carry TURN by the median STUN round trip to their server, keeps
    /// the nearest ``relaysPerCall``, and puts the nearest entry's STUN first (the agent uses the
    /// first STUN server). Entries that do not answer go last; if none answers the order stays.
    ///
    /// A relay that answered the UDP probes keeps only its UDP TURN URLs: UDP reaches it, and a
    /// TURN-over-TCP/TLS allocation to it would only be a liability. libnice 0.1.21 keeps one of
    /// a relay's allocations (the first to complete, often the TLS one) and drops the others as
    /// redundant; when the TCP connection of the allocation carrying the selected pair breaks
    /// (the relay died), it clears the selected pair while other nominated pairs remain, and
    /// `priv_prune_pending_checks` aborts the process (`assertion failed: (priority > 0)`). A
    /// relay that did not answer over UDP keeps its TCP and TLS URLs (peers behind UDP-blocking
    /// firewalls need them).
    static func rankRelays(_ servers: [ICEServer]) async -> [ICEServer] {
        var candidates: [RelaySelector.Candidate] = []
        for (index, server) in servers.enumerated() where server.urls.contains(where: { $0.hasPrefix("turn") }) {
            let uris = server.urls.compactMap(ICEServerURI.init)
            guard let uri = uris.first(where: { $0.scheme == .stun }) ?? uris.first(where: { $0.scheme == .turn && $0.transport == .udp }),
                  let host = ICEServerSettings.resolve(uri.host),
                  let address = try? SocketAddress(ipAddress: host, port: uri.port) else { continue }
            candidates.append(.init(id: String(index), stun: address))
        }
        let ranked = await RelaySelector(probes: 2, timeout: .milliseconds(400), keepUnanswered: true).rank(candidates)
        guard ranked.contains(where: { $0.rtt != nil }) else { return servers }
        let relays = ranked.prefix(relaysPerCall).compactMap { ranking -> ICEServer? in
            guard let index = Int(ranking.candidate.id) else { return nil }
            var server = servers[index]
            if ranking.rtt != nil {
                server.urls = server.urls.filter { url in
                    guard let uri = ICEServerURI(url), uri.scheme.isTURN else { return true }
                    return uri.scheme == .turn && uri.transport == .udp
                }
            }
            return server
        }
        let others = servers.filter { !$0.urls.contains { $0.hasPrefix("turn") } }
        return relays + others
    }

    /// How many calls may wait for ``accept(_:)`` at once (policy `ask`); more are answered `busy`.
    public static let maxRinging = 8

    private func incoming(_ payload: CallPayload) async {
        // A call rings at most `maxRing` (120 s) at the node; one still here later is stale.
        let now = ContinuousClock.now
        ringing = ringing.filter { now - $0.value.since < .seconds(120) }
        // A pairwise call of this peer's room call, from a participant it verified: taken at
        // once, beside the other pairwise calls (docs/rooms.md "Join, leave, ring, end").
        if isRoomCallPartner(payload) {
            // The same participant (name and key) calls again: it reloaded its page or
            // restarted, so its side of the old pairwise call is gone; the new one replaces it.
            if let old = roomCallPairs[payload.from] { await calls[old]?.hangup() }
            roomCallPairs[payload.from] = payload.call
            if (try? await answer(payload)) != nil { sink.yield(.answered(payload, .accept)) }
            return
        }
        // Tagged with a room call that is not this peer's (any more): never a one-to-one call.
        if payload.room != nil || payload.roomCall != nil {
            try? await client.callSetup(.busy, to: payload.from, call: payload.call, reason: "not in that room call")
            sink.yield(.answered(payload, .busy))
            return
        }
        if !calls.isEmpty || ringing.count >= Self.maxRinging {
            try? await client.callSetup(.busy, to: payload.from, call: payload.call, reason: "in another call")
            sink.yield(.answered(payload, .busy))
            return
        }
        switch acceptPolicy {
        case .auto:
            if (try? await answer(payload)) != nil { sink.yield(.answered(payload, .accept)) }
        case .ask:
            ringing[payload.call] = (payload, now)
            sink.yield(.incomingCall(payload))
        case .never:
            try? await client.callSetup(.busy, to: payload.from, call: payload.call, reason: "not taking calls")
            sink.yield(.answered(payload, .busy))
        }
    }

    private func answer(_ payload: CallPayload) async throws -> Call {
        await relaysRanked()
        let call = try Call(id: payload.call, remote: payload.from, remoteKey: payload.key, kind: payload.kind ?? .video, isCaller: false,
                            client: client, options: options, iceServers: iceServers, logger: logger)
        register(call)
        try await client.callSetup(.accept, to: payload.from, call: payload.call)
        return call
    }

    private func register(_ call: Call) {
        calls[call.id] = call
        sink.yield(.callStarted(call))
        Task { [weak self] in
            await call.waitUntilEnded()
            await self?.ended(call)
        }
    }

    private func ended(_ call: Call) async {
        calls[call.id] = nil
        roomCallPairs = roomCallPairs.filter { $0.value != call.id }
        if forwarderCall == call.id { forwarderCall = nil }
        sink.yield(.callEnded(call, await call.report()))
    }

    private func finish() {
        sink.finish()
    }

    // MARK: - Room calls (docs/rooms.md)

    /// Starts the call of `room`, or joins the one running there; returns its id. The pairwise
    /// calls follow from the states the node sends: this peer calls every participant that
    /// joined before it, and takes the calls of those who join after it.
    public func joinRoomCall(_ room: String, kind: CallKind) async throws -> String {
        if let running = roomCalls[room] { return try await join(room, running.call) }
        let id = UUID().uuidString
        // Set before the request: the state that answers it may be handled while it is sent.
        ownRoomCall = (room, id)
        do {
            try await client.roomCall(.start, room: room, call: id, kind: kind)
            return id
        } catch let error as SignalingError where error.code == .forbidden {
            ownRoomCall = nil
            // Another member started one first: its state is on the way (every member hears it).
            for _ in 0..<40 where roomCalls[room] == nil { try? await Task.sleep(for: .milliseconds(50)) }
            guard let running = roomCalls[room] else { throw error }
            return try await join(room, running.call)
        } catch {
            ownRoomCall = nil
            throw error
        }
    }

    private func join(_ room: String, _ call: String) async throws -> String {
        ownRoomCall = (room, call)
        do {
            try await client.roomCall(.join, room: room, call: call)
        } catch {
            ownRoomCall = nil
            throw error
        }
        return call
    }

    /// Leaves this peer's room call and hangs up its pairwise calls.
    public func leaveRoomCall() async {
        guard let own = ownRoomCall else { return }
        ownRoomCall = nil
        try? await client.roomCall(.leave, room: own.room, call: own.call)
        for id in roomCallPairs.values { await calls[id]?.hangup() }
        roomCallPairs = [:]
        if let id = forwarderCall { await calls[id]?.hangup() }
        forwarderCall = nil
        forwarderTarget = nil
    }

    /// After a signaling reconnect: joins again from the new connection, so the node keeps this
    /// peer's place (it takes out a participant with no connection after its grace, 30 s). The
    /// pairwise calls kept their paths meanwhile. A call that ended meanwhile is forgotten.
    private func rejoinRoomCall() async {
        guard let own = ownRoomCall else { return }
        do {
            try await client.roomCall(.join, room: own.room, call: own.call)
        } catch {
            logger.notice("room call \(own.call) of \(own.room) not rejoined: \(error)")
            if ownRoomCall?.call == own.call { ownRoomCall = nil }
        }
    }

    /// The calls of this peer's room call now: the pairwise ones and the one to the forwarder.
    public var roomCallPeers: [Call] { (Array(roomCallPairs.values) + [forwarderCall].compactMap { $0 }).compactMap { calls[$0] } }

    private func roomCallChanged(_ state: RoomCallState) async {
        if state.event == .ended {
            roomCalls[state.room] = nil
        } else if roomCalls[state.room] != nil || roomCalls.count < Self.maxKnownRoomCalls {
            roomCalls[state.room] = state
        }
        let me = client.name
        // --accept auto: a member who is rung joins.
        if state.event == .started, acceptPolicy == .auto, ownRoomCall == nil, !state.participants.contains(where: { $0.name == me }) {
            ownRoomCall = (state.room, state.call)
            do {
                try await client.roomCall(.join, room: state.room, call: state.call)
            } catch {
                ownRoomCall = nil
                logger.notice("could not join room call \(state.call) of \(state.room): \(error)")
            }
            return
        }
        guard let own = ownRoomCall, own.room == state.room, own.call == state.call else { return }
        if let refusal = state.forwarderRefusal {
            logger.warning("room call \(state.call) of \(state.room): the forwarder assignment was refused: \(refusal)")
            sink.yield(.forwarderRefused(room: state.room, call: state.call, reason: refusal))
        }
        // A participant who left: its pairwise call ends with it.
        if state.event == .left || state.event == .ended, let id = roomCallPairs.removeValue(forKey: state.member) {
            await calls[id]?.hangup()
        }
        if state.event == .ended, let id = forwarderCall {
            await calls[id]?.hangup()
        }
        guard let index = state.participants.firstIndex(where: { $0.name == me }) else { return }
        // Forwarded (docs/protocol.md "Room calls", *Forwarded mode*): one call to the forwarder,
        // bound to the key the node's signed assignment names; no new pairwise calls.
        if let forwarder = state.forwarder {
            if let id = forwarderCall, let running = calls[id] {
                guard forwarderTarget != forwarder else { return }
                // Failover (item 7): the node assigned another forwarder. The old call is dead or
                // dying with its forwarder; the room call itself goes on (no leave, no ringing).
                logger.notice("room call \(state.call) of \(state.room) moved from forwarder \(forwarderTarget?.address ?? "?") to \(forwarder.address)")
                forwarderCall = nil
                await running.hangup(reason: "the room call moved to another forwarder")
            }
            forwarderTarget = forwarder
            do {
                let call = try await call(forwarder.address, kind: state.kind, ring: nil, room: state.room, roomCall: state.call,
                                          remoteKey: forwarder.key, forwarded: true)
                forwarderCall = call.id
                logger.info("room call \(state.call) of \(state.room) is forwarded by \(forwarder.address); calling it")
                Task { [weak self] in await self?.endPairwiseCalls(onceForwarded: call) }
            } catch {
                logger.notice("could not call the forwarder of room call \(state.call): \(error)")
            }
            return
        }
        // The later joiner calls: every participant before this one that has no call with it yet.
        for earlier in state.participants[..<index] where roomCallPairs[earlier.name] == nil {
            do {
                let call = try await call(earlier.name, kind: state.kind, room: state.room, roomCall: state.call)
                roomCallPairs[earlier.name] = call.id
            } catch {
                logger.notice("could not call \(earlier.name) in room call \(state.call): \(error)")
            }
        }
    }

    /// Hangs up the pairwise calls once the forwarder's call decoded another participant (a
    /// short freeze at most), or after ``pairwiseOverlap`` at the latest.
    private func endPairwiseCalls(onceForwarded call: Call) async {
        let began = ContinuousClock.now
        while ContinuousClock.now - began < Self.pairwiseOverlap, await call.state != .ended {
            let decoded = await call.forwardedStatistics.values.contains { ($0.video?.receivedFrames ?? 0) > 0 || ($0.audio?.receivedFrames ?? 0) > 0 }
            if decoded { break }
            try? await Task.sleep(for: .milliseconds(100))
        }
        guard forwarderCall == call.id else { return }
        let pairs = roomCallPairs
        roomCallPairs = [:]
        if !pairs.isEmpty { logger.notice("room call moved to the forwarder in \(ContinuousClock.now - began); hanging up \(pairs.count) pairwise call(s)") }
        for id in pairs.values { await calls[id]?.hangup(reason: "the room call moved to its forwarder") }
    }

    /// Whether `payload` is a `call` of this peer's room call from a participant (by name and
    /// key, as the node's state listed it) other than the pairwise call this peer has with it.
    private func isRoomCallPartner(_ payload: CallPayload) -> Bool {
        // The caller wrote the room relative to its own node (`#ops@east` from west, `#ops`
        // at east): the name must match; the call id and the verified participant decide.
        guard let own = ownRoomCall, let room = payload.room, RoomCallSigning.roomName(room) == RoomCallSigning.roomName(own.room),
              payload.roomCall == own.call,
              let state = roomCalls[own.room], state.call == own.call, roomCallPairs[payload.from] != payload.call else { return false }
        return state.participants.contains { $0.name == payload.from && $0.key == payload.key }
    }
}

/// What a ``Peer`` reports.
public enum PeerEvent: Sendable {
    case signaling(SignalingEvent)
    /// A call rings and waits for ``Peer/accept(_:)`` (policy `ask`).
    case incomingCall(CallPayload)
    /// The policy answered a call request (`accept` or `busy`).
    case answered(CallPayload, CallSetupType)
    case callStarted(Call)
    case callEnded(Call, CallReport)
    /// A verified call-setup message that was not acted on: it did not come from its call's
    /// other party (address and key), or names no call of this peer.
    case refused(CallPayload, reason: String)
    /// The node said the room call is forwarded, but its signed assignment did not verify (a
    /// key other than the node's pinned one, expired, another call): no call to that forwarder.
    case forwarderRefused(room: String, call: String, reason: String)
}
