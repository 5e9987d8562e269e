import Foundation

/// Call setup to `forwarder` in cluster mode (docs/cluster.md "Forwarded calls across
/// members"). Each member with `--forwarder` runs its own forwarder, logged in to it as
/// `forwarder`; a forwarded room call runs through its host's. A participant's call setup to
/// `forwarder` is routed to the member hosting the call (read in `room_calls`), never to the
/// forwarder of the participant's own member.
struct ClusterForwarderRoute {
    /// The member whose forwarder takes the participant's call, and the call's room.
    let member: String
    let room: String
    /// When a message last took the route: one unused for ``SignalingHub/clusterForwarderRouteIdle`` goes.
    var used: ContinuousClock.Instant
}

/// A participant's call-setup message to `forwarder`, checked (signature, freshness), on its
/// way to the forwarder of the member hosting the call.
struct ClusterForwarderSetup {
    let type: CallSetupType
    let payload: CallPayload
    let message: SignalingMessage
    let reply: ConnectionHandle
}

extension SignalingHub {
    /// Routes of participants' calls to another member's forwarder kept at once: a forwarded
    /// call takes at most 20 participants, and this many is 200 such calls with all their
    /// participants here. A `call` past it is refused `store-full`.
    static let maxClusterForwarderRoutes = 4096
    /// Routes one name gets from messages of calls placed elsewhere (below): a participant has
    /// one call to the forwarder per room call, and is in few at once.
    static let maxClusterForwarderRoutesPerCaller = 8
    /// A route no message took for this long is dropped: a later message of its call finds the
    /// host again in `room_calls` (as after a failover, below).
    static let clusterForwarderRouteIdle: Duration = .seconds(600)
    /// Calls whose host is being read in `room_calls` at once, and the later messages of one
    /// such call held meanwhile (so that an ICE restart's `sdp` and its `candidate`s reach the
    /// forwarder in the order they were sent). Past either, refused `rate-limited`.
    static let maxClusterForwarderLookups = 256
    static let maxHeldPerLookup = 32

    /// Sends a local participant's call setup to the forwarder of the member hosting its call
    /// (or this member's own), then acks it; answers an error when there is none.
    func clusterForwarderSetup(_ setup: ClusterForwarderSetup, cluster: any ClusterRouting) async {
        let name = setup.message.from
        let key = CallRoute(from: name, to: ForwarderAssignment.forwarderName, call: setup.payload.call)
        if clusterForwarderLookups[key] != nil {
            // The host of this call is being read: held, and sent after the message that asked.
            guard clusterForwarderLookups[key, default: []].count < Self.maxHeldPerLookup else {
                return refuseForwarderSetup(setup, SignalingError(.rateLimited, "more than \(Self.maxHeldPerLookup) messages of call \(setup.payload.call.prefix(64)) wait for its route to the forwarder"))
            }
            clusterForwarderLookups[key, default: []].append(setup)
            return
        }
        let looking = clusterForwarderRoutes[key] == nil
        if looking {
            guard clusterForwarderLookups.count < Self.maxClusterForwarderLookups else {
                return refuseForwarderSetup(setup, SignalingError(.rateLimited, "this member looks up \(Self.maxClusterForwarderLookups) calls' forwarders at once, the most it does; send again"))
            }
            clusterForwarderLookups[key] = []
        }
        let member: Result<String?, SignalingError>
        do {
            member = .success(try await clusterForwarderMember(setup.type, setup.payload, caller: name, id: setup.message.id))
        } catch {
            member = .failure(error)
        }
        let held = looking ? clusterForwarderLookups.removeValue(forKey: key) ?? [] : []
        for each in [setup] + held {
            switch member {
            case .failure(let error):
                refuseForwarderSetup(each, error)
            case .success(let member):
                if each.type == .hangup || each.type == .cancel { clusterForwarderRoutes[key] = nil }
                sendToForwarder(each, at: member, cluster: cluster)
            }
        }
    }

    private func refuseForwarderSetup(_ setup: ClusterForwarderSetup, _ error: SignalingError) {
        setup.reply.send(errorMessage(SignalingError(error.code, error.reason, of: setup.message.id), to: setup.message.from))
    }

    /// Hands one message to `member`'s forwarder, or this member's own when nil, and acks it.
    private func sendToForwarder(_ setup: ClusterForwarderSetup, at member: String?, cluster: any ClusterRouting) {
        let name = setup.message.from, forwarder = ForwarderAssignment.forwarderName
        if let member {
            cluster.deliver(text: SignalingCodec.encode(setup.message), to: forwarder, at: member)
        } else if !deliverCallSetup(setup.message, from: name, to: forwarder, call: setup.payload.call) {
            return refuseForwarderSetup(setup, SignalingError(.unavailable, "this member's forwarder is not logged in now; call setup is not stored"))
        }
        callSetupRelayed(setup.type, setup.payload, id: setup.message.id, name: name, to: forwarder, reply: setup.reply)
    }

    /// The member whose forwarder a local participant's call-setup message to this node's
    /// `forwarder` goes to, or nil to deliver it here (this member hosts the call, or the
    /// message is of no call routed elsewhere). A tagged `call` of a room call another member
    /// hosts goes to that host (read in `room_calls`, which is authoritative where a state
    /// may lag): the call was checked against the remembered state before this, and the host
    /// checks it again against its own (``clusterDeliver(text:to:)``). The call's later
    /// messages (`sdp`, `candidate`, `hangup`, `cancel`) follow it there; those of a call
    /// placed at another member (this participant's member died and it logged in here) find
    /// the host as ``clusterForwarderMemberAfterFailover`` says.
    func clusterForwarderMember(_ type: CallSetupType, _ payload: CallPayload, caller: String, id: String) async throws(SignalingError) -> String? {
        guard let cluster else { return nil }
        let key = CallRoute(from: caller, to: ForwarderAssignment.forwarderName, call: payload.call)
        guard type == .call else {
            guard let route = clusterForwarderRoutes[key] else {
                return try await clusterForwarderMemberAfterFailover(type, key: key, id: id, cluster: cluster)
            }
            if type == .hangup || type == .cancel { clusterForwarderRoutes[key] = nil } else { clusterForwarderRoutes[key]?.used = now() }
            return route.member
        }
        // A room of another node never reaches here: its forwarder is `forwarder@host`.
        guard let address = payload.room.flatMap({ roomAddress($0) }), address.node == nil, let roomCall = payload.roomCall,
              roomCalls[address.name] == nil else { return nil }
        let room = address.name
        guard let host = try await cluster.roomCallHost(room: room, call: roomCall, claim: false), host != cluster.member else {
            throw SignalingError(.unavailable, "no member of this node hosts room call \(roomCall.prefix(64)) of \(room) now; call setup is not stored", of: id)
        }
        try keepForwarderRoute(key, ClusterForwarderRoute(member: host, room: room, used: now()), id: id)
        return host
    }

    /// The host of a call this member has no route for: a participant whose member died logged
    /// in here, and its ICE restart (`sdp`, `candidate`, docs/rooms.md) follows its call to the
    /// forwarder. That call was placed at the dead member, and the message does not name its
    /// room: the hosts of the caller's rooms' calls are read in `room_calls` (as for a `call`),
    /// narrowed to those whose state, as remembered here, lists the caller in a forwarded call
    /// (a state reaches this member only once the host saw the name online here: it may not
    /// have yet). One host: the message goes there, and the route is kept for the call's next
    /// messages. None: this member's own forwarder (it binds the call by key, and ignores a
    /// call it does not carry). The host checks the caller by key
    /// (``clusterForwarderRefusal(_:_:_:from:)``).
    private func clusterForwarderMemberAfterFailover(_ type: CallSetupType, key: CallRoute, id: String,
                                                     cluster: any ClusterRouting) async throws(SignalingError) -> String? {
        let caller = key.from
        if roomCalls.values.contains(where: { $0.forwarded && $0.index(of: caller) != nil }) { return nil }
        let hosts = try await cluster.roomCallHosts(ofRoomMember: caller).filter { $0.value != cluster.member }
        let listed = hosts.filter { room, _ in
            clusterRoomCalls[room].map { $0.forwarder != nil && $0.participants.contains(caller) } ?? false
        }
        let candidates = listed.isEmpty ? hosts : listed
        guard let first = candidates.min(by: { $0.key < $1.key }) else { return nil }
        let room = first.key, member = first.value
        guard Set(candidates.values).count == 1 else {
            throw SignalingError(.unavailable, "calls of several rooms of \(caller.prefix(80)) run at different members and this member does not know which one call \(key.call.prefix(64)) belongs to; call the forwarder again (a new call)", of: id)
        }
        if type != .hangup, type != .cancel {
            // Any room member can send such messages with made-up call ids: a few routes each.
            guard clusterForwarderRoutes.keys.lazy.filter({ $0.from == caller }).count < Self.maxClusterForwarderRoutesPerCaller else {
                throw SignalingError(.rateLimited, "\(caller.prefix(80)) has \(Self.maxClusterForwarderRoutesPerCaller) calls routed to other members' forwarders, the most one name has; hang one up", of: id)
            }
            try keepForwarderRoute(key, ClusterForwarderRoute(member: member, room: room, used: now()), id: id)
        }
        return member
    }

    private func keepForwarderRoute(_ key: CallRoute, _ route: ClusterForwarderRoute, id: String) throws(SignalingError) {
        if clusterForwarderRoutes[key] == nil, clusterForwarderRoutes.count >= Self.maxClusterForwarderRoutes {
            throw SignalingError(.storeFull, "this member routes \(Self.maxClusterForwarderRoutes) calls to other members' forwarders, the most it keeps; try again when one ends", of: id)
        }
        clusterForwarderRoutes[key] = route
    }

    /// Drops the routes no message took for ``clusterForwarderRouteIdle`` (from the sweep).
    func expireClusterForwarderRoutes(now: ContinuousClock.Instant) {
        guard !clusterForwarderRoutes.isEmpty else { return }
        clusterForwarderRoutes = clusterForwarderRoutes.filter { now - $0.value.used < Self.clusterForwarderRouteIdle }
    }

    /// Why call setup another member sent to this member's `forwarder` may not reach it, or
    /// nil. A `call` must be of a forwarded room call this member hosts, from one of its
    /// participants (checked again here: the sender's member checked its remembered state,
    /// which may lag). An `sdp` or `candidate` — which a member with no route for its call
    /// sends here after a failover, found by the caller's rooms alone — must come from a
    /// participant of a forwarded call hosted here, signed by the key it joined with (its
    /// signed `join`): by key, not by name, so that another device of the name cannot reach the
    /// forwarder in its place. Dropped when refused: the sender's member acknowledged it (a
    /// `call`'s ring timer answers the caller `timeout`).
    func clusterForwarderRefusal(_ type: CallSetupType, _ payload: CallPayload, _ body: SignedBody, from caller: String) -> String? {
        switch type {
        case .call:
            guard let room = payload.room.flatMap({ roomAddress($0) }), room.node == nil, roomCalls[room.name] != nil else {
                return "a call to this member's forwarder names no room call this member hosts"
            }
            return roomCallPairRefusal(room: payload.room, roomCall: payload.roomCall, caller: caller, callee: ForwarderAssignment.forwarderName)
        case .sdp, .candidate:
            let joined = roomCalls.values.lazy.filter(\.forwarded)
                .compactMap { call in call.index(of: caller).map { call.participants[$0].body.key } }
            guard let key = joined.first(where: { $0 == body.key }) else {
                return "\(caller.prefix(80)) is in no forwarded call this member hosts with the key this \(type.rawValue) is signed with"
            }
            do {
                _ = try CallSigning.verify(body, type: type, from: caller, to: ForwarderAssignment.forwarderName, key: key, of: nil)
            } catch {
                return error.reason
            }
            return nil
        case .accept, .reject, .cancel, .busy, .hangup:
            return nil
        }
    }
}
