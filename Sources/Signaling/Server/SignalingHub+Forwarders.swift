import Foundation

/// The forwarders of other nodes that keep a session at this node (docs/protocol.md "Room
/// calls", *Forwarded mode* item 7): who they are, how far, whether they still answer.
struct ForwarderSessions {
    struct Entry {
        let connection: Int
        let key: String
        /// The last round trips of pings answered, newest last (at most ``rttSamples``).
        var rtts: [Duration] = []
        /// The ping in flight, if any: its id and when it left.
        var pending: (id: String, sent: ContinuousClock.Instant)?
        /// When it last answered (its login counts as an answer).
        var answered: ContinuousClock.Instant
        var lastPing: ContinuousClock.Instant?

        /// The median of the recent round trips; nil before the first pong.
        var rtt: Duration? {
            guard !rtts.isEmpty else { return nil }
            return rtts.sorted()[rtts.count / 2]
        }
    }

    static let rttSamples = 5
    /// By name (`forwarder.<key id>`).
    var entries: [String: Entry] = [:]
    /// The loop that pings them while there are any.
    var watch: Task<Void, Never>?
}

extension SignalingHub {
    /// Forwarder sessions of other nodes held at once (the next login is refused `store-full`).
    static let maxForwarderSessions = 16
    /// Calls of this node one forwarder is assigned at most (its own bound, `ForwardingNode`).
    static let maxCallsPerForwarder = 64

    /// Why a login under a `forwarder.` name may not proceed, or nil: the name must be the one
    /// of its key, and the key a forwarding node this node trusts (configured, or a proven mesh
    /// node that dial-back found reachable). Anyone else with a fresh key would otherwise be
    /// handed every large call's media.
    func forwarderLoginRefusal(name: String, key: String, id: String) -> SignalingError? {
        guard name.hasPrefix(ForwarderAssignment.remotePrefix) else { return nil }
        guard ForwarderAssignment.remoteName(forKey: key) == name else {
            return SignalingError(.nameTaken, "names beginning with \(ForwarderAssignment.remotePrefix) are reserved for forwarding nodes, each under \(ForwarderAssignment.remotePrefix) + the first 16 hex digits of its node key; this key's is \(ForwarderAssignment.remoteName(forKey: key) ?? "-")", of: id)
        }
        guard isTrustedForwarder(key) else {
            return SignalingError(.forbidden, "this node assigns calls only to forwarders it trusts: a node key of --forwarder-key, or a mesh node proven and reachable by dial-back (relay); \(key.prefix(12))… is neither", of: id)
        }
        if forwarders.entries[name] == nil, forwarders.entries.count >= Self.maxForwarderSessions {
            return SignalingError(.storeFull, "this node holds \(Self.maxForwarderSessions) forwarder sessions, the most it keeps", of: id)
        }
        return nil
    }

    func isTrustedForwarder(_ key: String) -> Bool {
        if configuration.forwarderKeys.contains(key) { return true }
        return mesh?.entries.values.contains { $0.record.key == key && $0.record.relay && !$0.record.isFull } ?? false
    }

    /// A forwarder logged in on `connection`: it may be assigned calls from now on, and takes
    /// every forwarded call that lost its forwarder.
    func forwarderLoggedIn(name: String, key: String, on connection: Int) {
        guard name.hasPrefix(ForwarderAssignment.remotePrefix) else { return }
        forwarders.entries[name] = ForwarderSessions.Entry(connection: connection, key: key, answered: now())
        logger.info("forwarder session up", metadata: ["forwarder": "\(name)", "connection": "\(connection)"])
        if forwarders.watch == nil {
            forwarders.watch = Task { [weak self] in await self?.watchForwarders() }
        }
        reassignOrphanedCalls()
    }

    /// The connection `connection` closed: if it was a forwarder's, its calls go to the next one.
    func forwarderDropped(_ connection: Int, name: String?) {
        guard let name, let entry = forwarders.entries[name], entry.connection == connection else { return }
        forwarders.entries[name] = nil
        logger.notice("forwarder session gone", metadata: ["forwarder": "\(name)"])
        reassignCalls(of: name)
    }

    /// A `pong` on a forwarder's session: its round trip, if it answers the ping in flight.
    func forwarderPong(_ id: String, name: String, on connection: Int) {
        guard var entry = forwarders.entries[name], entry.connection == connection, let pending = entry.pending, pending.id == id else { return }
        let at = now()
        entry.rtts.append(at - pending.sent)
        if entry.rtts.count > ForwarderSessions.rttSamples { entry.rtts.removeFirst() }
        entry.pending = nil
        entry.answered = at
        forwarders.entries[name] = entry
    }

    /// One round of liveness at `now`: a forwarder silent for ``HubConfiguration/forwarderSilence``
    /// is closed (its calls reassigned); the others get a ping every ``HubConfiguration/forwarderPing``.
    func forwarderTick(now: ContinuousClock.Instant) {
        for (name, entry) in forwarders.entries {
            if now - entry.answered > configuration.forwarderSilence {
                logger.notice("forwarder silent; closing its session", metadata: ["forwarder": "\(name)"])
                drop(entry.connection)
                // `drop` reassigned its calls if the session was still its (forwarderDropped).
                if forwarders.entries[name]?.connection == entry.connection { forwarderDropped(entry.connection, name: name) }
                continue
            }
            guard entry.lastPing.map({ now - $0 >= configuration.forwarderPing }) ?? true,
                  let handle = sessions[entry.connection]?.handle else { continue }
            let id = "fp-" + UUID().uuidString.prefix(8)
            // A ping not answered before the next one is a lost sample, not a round trip.
            forwarders.entries[name]?.pending = (id, now)
            forwarders.entries[name]?.lastPing = now
            handle.send(nodeMessage(to: name, .ping, id: id))
        }
    }

    private func watchForwarders() async {
        while !Task.isCancelled, !forwarders.entries.isEmpty {
            forwarderTick(now: now())
            try? await Task.sleep(for: .milliseconds(250))
        }
        forwarders.watch = nil
    }

    /// The forwarder a call that grows past the limit goes to, or nil: this node's own if it
    /// runs one (it is nearest to its own peers), else the live forwarder session with the least
    /// round trip (unmeasured last; then fewer calls, then name), not full, not `excluding`.
    func chooseForwarder(excluding: String? = nil) -> RoomCall.Forwarder? {
        if configuration.forwarder, let identity = configuration.nodeIdentity, excluding != ForwarderAssignment.forwarderName {
            return RoomCall.Forwarder(name: ForwarderAssignment.forwarderName, key: identity.publicKeyBase64)
        }
        var load: [String: Int] = [:]
        for call in roomCalls.values where call.forwarded { if let name = call.forwarder?.name { load[name, default: 0] += 1 } }
        let candidates = forwarders.entries.filter { name, entry in
            name != excluding && (load[name] ?? 0) < Self.maxCallsPerForwarder && sessions[entry.connection]?.name == name
        }
        let best = candidates.min { a, b in
            let ra = a.value.rtt ?? .seconds(3600), rb = b.value.rtt ?? .seconds(3600)
            if ra != rb { return ra < rb }
            let la = load[a.key] ?? 0, lb = load[b.key] ?? 0
            if la != lb { return la < lb }
            return a.key < b.key
        }
        return best.map { RoomCall.Forwarder(name: $0.key, key: $0.value.key) }
    }

    /// The forwarder sessions now, nearest first, for `/mesh` and tests: name, key, round trip.
    public var forwarderSessions: [(name: String, key: String, rtt: Duration?)] {
        forwarders.entries.map { ($0.key, $0.value.key, $0.value.rtt) }
            .sorted { ($0.rtt ?? .seconds(3600), $0.name) < ($1.rtt ?? .seconds(3600), $1.name) }
    }

    /// Every forwarded call of `name` goes to the next forwarder; each room's members hear it as
    /// `current` with the new signed assignment. A call with no forwarder left keeps its last
    /// assignment until one logs in (``reassignOrphanedCalls()``).
    private func reassignCalls(of name: String) {
        var changes: [RoomCallStateBody] = []
        for (room, call) in roomCalls where call.forwarded && call.forwarder?.name == name {
            guard let next = chooseForwarder(excluding: name) else {
                logger.warning("room call has no forwarder left", metadata: ["room": "\(room)", "call": "\(call.id)"])
                continue
            }
            changes.append(moveCall(in: room, to: next))
        }
        tellLater(changes)
    }

    /// Forwarded calls whose forwarder is gone (no session under its name) go to a live one.
    private func reassignOrphanedCalls() {
        var changes: [RoomCallStateBody] = []
        for (room, call) in roomCalls where call.forwarded {
            guard let current = call.forwarder, current.name != ForwarderAssignment.forwarderName,
                  forwarders.entries[current.name] == nil, let next = chooseForwarder() else { continue }
            changes.append(moveCall(in: room, to: next))
        }
        tellLater(changes)
    }

    private func moveCall(in room: String, to next: RoomCall.Forwarder) -> RoomCallStateBody {
        var call = roomCalls[room]!
        let previous = call.forwarder?.name ?? "-"
        call.forwarder = next
        roomCalls[room] = call
        logger.notice("room call moved to another forwarder", metadata: ["room": "\(room)", "call": "\(call.id)", "from": "\(previous)", "to": "\(next.name)"])
        // `current`: the participants did not change; clients that predate the move take it
        // as any state and read the new assignment from it.
        return state(of: call, in: room, event: .current, member: next.name)
    }

    private func tellLater(_ changes: [RoomCallStateBody]) {
        guard !changes.isEmpty else { return }
        Task { for state in changes { await self.tellRoomCall(state) } }
    }
}
