import Foundation
import Logging
import Media
import MeshCore
import Signaling

/// The forwarder of `meshnode serve --forwarder` (docs/protocol.md "Room calls", *Forwarded
/// mode*): a peer logged in to its own node under the reserved name `forwarder` with the node
/// key, which takes the calls participants of forwarded room calls place to it and runs one
/// ``ForwardedSession`` per participant into the ``ForwardingNode``'s call of that room call.
///
/// The node relays a tagged `call` to its forwarder only from a participant of that forwarded
/// room call; the service takes no other call (`reject`), and binds each session to the
/// caller's address and key as any callee does.
public actor ForwarderService {
    /// The node's forwarded calls (bounded, `/metrics`).
    public nonisolated let node: ForwardingNode
    private let identity: Identity
    /// The name it logs in under: `forwarder` at its own node, `forwarder.<key id>` at another
    /// (docs/protocol.md "Room calls", *Forwarded mode* item 7).
    public nonisolated let name: String
    /// Keeps the calls of different nodes' rooms apart in the shared ``ForwardingNode``.
    private let scope: String
    /// The addresses its ICE agents gather on (the node's bind addresses; empty: every interface).
    private let localAddresses: [String]
    private var client: SignalingClient?
    private let logger: Logger
    private var iceServers: [ICEServer] = []
    /// Sessions by call-setup id; at most ``maxSessions``.
    private var sessions: [String: ForwardedSession] = [:]
    /// Forwarded calls whose changes are watched, by their key (room and room call).
    private var watched: Set<String> = []
    private var loop: Task<Void, Never>?

    /// Sessions at most at once: every forwarded call full (64 × 20).
    public static let maxSessions = 64 * ForwarderAssignment.maxParticipants

    /// A forwarder that will log in with the node's identity: to its own node by default, or
    /// to another node (`forFarNode`: under `forwarder.<key id>`, its calls kept apart).
    public init(identity: Identity, localAddresses: [String] = [], node: ForwardingNode = ForwardingNode(),
                forFarNode url: String? = nil, logger: Logger = Logger(label: "meshnode.forwarder")) {
        self.identity = identity
        self.name = url == nil ? ForwarderAssignment.forwarderName
            : ForwarderAssignment.remoteName(forKey: identity.publicKeyBase64) ?? ForwarderAssignment.forwarderName
        self.scope = url.map { $0 + " " } ?? ""
        self.localAddresses = localAddresses
        self.node = node
        self.logger = logger
    }

    /// Logs in at `url` (the node's own `/ws`) and takes calls until ``stop()``.
    public func start(url: String) async throws {
        let client = SignalingClient(url: url, name: name, identity: identity, pins: KeyPins(path: nil),
                                     reconnectDelay: .seconds(1), jitter: .milliseconds(200), logger: logger)
        self.client = client
        loop = Task { [weak self] in
            for await event in client.events { await self?.handle(event) }
        }
        let welcome: WelcomeBody
        do {
            welcome = try await client.connect()
        } catch {
            // The caller may try again with a new start: nothing of this attempt stays.
            loop?.cancel()
            loop = nil
            self.client = nil
            await client.close()
            throw error
        }
        iceServers = welcome.iceServers
        logger.notice("forwarder logged in at \(url) as \(name)")
    }

    /// Ends every session and leaves the node.
    public func stop() async {
        for session in sessions.values { await session.end(reason: "the forwarder stops", tell: true) }
        sessions = [:]
        await node.shutdown()
        await client?.close()
        loop?.cancel()
    }

    private func handle(_ event: SignalingEvent) async {
        switch event {
        case .connected(let welcome), .reconnected(let welcome):
            iceServers = welcome.iceServers
        case .callSetup(let payload):
            await route(payload)
        default:
            break
        }
    }

    private func route(_ payload: CallPayload) async {
        guard let client else { return }
        if let session = sessions[payload.call] {
            // Bound by address and key (docs/protocol.md "Binding").
            guard client.pinAddress(of: payload.from) == client.pinAddress(of: session.participant), payload.key == session.key else {
                logger.notice("forwarder: refused a \(payload.type.rawValue) for call \(payload.call.prefix(64)) from \(payload.from.prefix(80)): not its caller")
                return
            }
            await session.handle(payload)
        } else if payload.type == .call {
            await incoming(payload)
        }
    }

    /// A participant's call: taken at once if it is tagged with a room call (the node checked
    /// that the caller is in it and that it is forwarded) and a bound allows it.
    private func incoming(_ payload: CallPayload) async {
        guard let client else { return }
        func decline(_ type: CallSetupType, _ reason: String) async {
            logger.notice("forwarder: \(type.rawValue) to \(payload.from.prefix(80)): \(reason)")
            try? await client.callSetup(type, to: payload.from, call: payload.call, reason: reason)
        }
        guard let room = payload.room, let roomCall = payload.roomCall, let key = payload.key else {
            return await decline(.reject, "the forwarder takes only calls of forwarded room calls")
        }
        guard sessions.count < Self.maxSessions else { return await decline(.busy, "the forwarder carries \(Self.maxSessions) participants already") }
        // The room by its name: a member of another node writes it `#ops@host` (its node's
        // view), one here `#ops`; the node let the call through only for a room of its own.
        let callKey = "\(scope)\(RoomCallSigning.roomName(room)) \(roomCall)"
        let forwarded: ForwardedCall
        do {
            forwarded = try await node.call(callKey)
        } catch {
            return await decline(.busy, error.reason)
        }
        // The same participant calling again (it restarted): the new call replaces the old — the
        // same key, not only the same name: the core knows a participant by its name, and another
        // device of the name must not cut a live session off (it is told to wait instead).
        for (id, old) in sessions where old.forwarded === forwarded && client.pinAddress(of: old.participant) == client.pinAddress(of: payload.from) {
            guard old.key == key else {
                if await old.ended { continue }
                return await decline(.busy, "\(payload.from) is in this forwarded call from another device; it must hang up first")
            }
            sessions[id] = nil
            await old.end(reason: "\(payload.from) called again", tell: true)
        }
        let session: ForwardedSession
        do {
            session = try ForwardedSession(id: payload.call, participant: payload.from, key: key, forwarded: forwarded, client: client,
                                           iceServers: iceServers, localAddresses: localAddresses, logger: logger)
        } catch {
            return await decline(.busy, "no DTLS certificate: \(error.errorReason)")
        }
        sessions[payload.call] = session
        watch(forwarded, key: callKey)
        Task { [weak self] in
            await session.waitUntilEnded()
            await self?.sessionEnded(session, callKey: callKey)
        }
        do {
            try await client.callSetup(.accept, to: payload.from, call: payload.call)
        } catch {
            await session.end(reason: "the accept could not be sent: \(error)", tell: false)
        }
    }

    /// Renegotiates every session of `forwarded` at each join (a DTLS session up) and leave.
    private func watch(_ forwarded: ForwardedCall, key: String) {
        guard watched.insert(key).inserted else { return }
        Task { [weak self] in
            for await change in forwarded.changes { await self?.changed(change, in: forwarded) }
            await self?.unwatch(key)
        }
    }

    private func unwatch(_ key: String) { watched.remove(key) }

    private func changed(_ change: ForwardedCall.Change, in forwarded: ForwardedCall) async {
        let members = sessions.values.filter { $0.forwarded === forwarded }
        if case .left(let participant) = change {
            // Its transport ended (close_notify, a failure): its session too — not a session
            // that replaced it (the participant called again) and is not in the core yet, or is
            // in it again.
            let inCore = await forwarded.participants.contains(participant)
            for session in members where session.participant == participant && !inCore {
                if await session.added { await session.end(reason: "its transport ended", tell: false) }
            }
        }
        for session in members { await session.renegotiate() }
    }

    private func sessionEnded(_ session: ForwardedSession, callKey: String) async {
        if sessions[session.id] === session { sessions[session.id] = nil }
        let forwarded = await node.existing(callKey)
        if let forwarded, await forwarded.participants.isEmpty, !sessions.values.contains(where: { $0.forwarded === forwarded }) {
            await node.end(callKey)
        }
    }
}
