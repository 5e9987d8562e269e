import Foundation

/// A call of a whole room as its hosting node keeps it (docs/rooms.md, docs/protocol.md "Room
/// calls"): its id and kind, and its participants, each with the signed request by which it
/// joined. Media never passes through here: in peer-to-peer mode the participants run one
/// pairwise call per pair, set up with ordinary call-setup messages.
struct RoomCall {
    struct Participant {
        let name: String
        /// Its own signed `start` or `join`, handed to every member as proof that it joined.
        var body: SignedBody
        /// The device (connection) that joined; a reconnect joins again from its new one.
        var connection: Int
        /// Since when no connection of it is open: past the grace it leaves.
        var goneSince: ContinuousClock.Instant?
        /// For a peer of a linked node: that node (`connection` is the link). This node cannot
        /// see such a peer's connection; it counts as connected while the link is up.
        var node: String? = nil
        /// In cluster mode, for a participant whose device is at another member (docs/cluster.md
        /// "Room calls across members"): that member. It counts as connected while its name is
        /// online there.
        var member: String? = nil
    }

    let id: String
    let kind: CallKind
    /// In the order they joined; the starter first.
    var participants: [Participant]
    /// Whether the call runs through this node's forwarder (docs/protocol.md "Room calls",
    /// *Forwarded mode*). Once forwarded it stays so until it ends.
    var forwarded = false
    /// A forwarder: its name at this node and the key it signs call setup with.
    struct Forwarder: Equatable {
        let name: String
        let key: String
    }
    /// The forwarder of a forwarded call: this node's own (`forwarder`) or another node's
    /// session here (`forwarder.<key id>`, SignalingHub+Forwarders.swift); kept when it goes
    /// until another takes the call.
    var forwarder: Forwarder?

    func index(of name: String) -> Int? { participants.firstIndex { $0.name == name } }
}

extension SignalingHub {
    /// Room calls one connection may start: one per 10 s on average, 3 at once. Each start rings
    /// every member of a room on every device; a member of 100 rooms must not ring them all in
    /// a loop.
    static let roomCallStartRate = 0.1
    static let roomCallStartBurst = 3.0

    /// A signed `room-call` request from a logged-in member. Checks, in this order: the room,
    /// the signature against the key the sender logged in with; then, for a room of this node,
    /// membership (by that name, so by its keys), freshness and replay, and the action. A request
    /// for a room of another node goes to that node over the link (Links/SignalingHub+RemoteRoomCalls.swift).
    func roomCallRequest(_ body: SignedBody, message: SignalingMessage, name: String, key: String, on connection: Int) async {
        guard let reply = sessions[connection]?.handle else { return }
        let id = message.id
        guard let address = roomAddress(message.to) else {
            return reply.send(errorMessage(SignalingError(.badField, "a room call goes to a #room, not '\(message.to.prefix(40))'", of: id), to: name))
        }
        let payload: RoomCallPayload
        do {
            payload = try RoomCallSigning.verify(body, from: name, room: message.to, key: key, of: id)
        } catch {
            return reply.send(errorMessage(error, to: name))
        }
        let proved = withDeviceProof(body, from: connection)
        if let node = address.node {
            return await relayRoomCall(proved, message: message, room: address.name, node: node, name: name, reply: reply)
        }
        if let cluster {
            return await clusterRoomCallRequest(payload, body: proved, message: message, room: address.name, name: name,
                                                connection: connection, reply: reply, cluster: cluster)
        }
        await roomCallRequest(payload, body: proved, id: id, room: address.name, name: name, node: nil, connection: connection, reply: reply)
    }

    /// A verified request of `name` (a local name, or `name@node` for a peer of a linked node
    /// whose link relayed it) about the call of `room`, a room of this node.
    func roomCallRequest(_ payload: RoomCallPayload, body: SignedBody, id: String, room: String, name: String, node: String?,
                         connection: Int, reply: ConnectionHandle) async {
        func refuse(_ code: SignalingError.Code, _ reason: String) {
            reply.send(errorMessage(SignalingError(code, reason, of: id), to: name))
        }
        // Members only, by name: the name's keys are the ones its owner endorsed, and this
        // connection proved one of them at login.
        let members: [String]
        do {
            members = try await store.members(of: room)
        } catch {
            return refuse(error.code, error.reason)
        }
        guard members.contains(name) else {
            return refuse(.notMember, "join \(room) before calling in it; only its members start, join or hear its calls")
        }
        let clock = Date().timeIntervalSince1970
        guard payload.ts.isFinite, abs(clock - payload.ts) <= callFreshness.window else {
            return refuse(.stale, "the room-call \(payload.action.rawValue) was signed at ts \(payload.ts), more than \(Int(callFreshness.window)) s from this node's clock — check the sender's clock")
        }
        do {
            try callFreshness.admit(body, ts: payload.ts, now: clock, what: "the room-call \(payload.action.rawValue) of \(payload.call.prefix(64))", of: id)
        } catch {
            return reply.send(errorMessage(error, to: name))
        }
        // Everything below runs without a suspension point until the state is updated, so that
        // two requests for one room cannot interleave (the hub is an actor).
        let state: RoomCallStateBody?
        switch payload.action {
        case .start: state = startRoomCall(payload, body: body, room: room, name: name, node: node, connection: connection, refuse: refuse)
        case .join: state = joinRoomCall(payload, body: body, room: room, name: name, node: node, connection: connection, refuse: refuse)
        case .leave: state = leaveRoomCall(payload, room: room, name: name, refuse: refuse)
        }
        guard let state else { return }
        reply.send(ack(id, to: name))
        tellRoomCall(state, members: members)
    }

    private func startRoomCall(_ payload: RoomCallPayload, body: SignedBody, room: String, name: String, node: String?, connection: Int,
                               refuse: (SignalingError.Code, String) -> Void) -> RoomCallStateBody? {
        if let running = roomCalls[room] {
            refuse(.forbidden, "call \(running.id) runs in \(room) already; join it (or wait until it ends)")
            return nil
        }
        var limiter = sessions[connection]?.roomCallStarts
            ?? RateLimiter(rate: Self.roomCallStartRate, burst: Self.roomCallStartBurst, now: now())
        let allowed = limiter.allow(now: now())
        sessions[connection]?.roomCallStarts = limiter
        guard allowed else {
            refuse(.rateLimited, "more than \(Int(Self.roomCallStartBurst)) room calls started at once (one per \(Int(1 / Self.roomCallStartRate)) s on average); each start rings a whole room")
            return nil
        }
        guard roomCalls.count < configuration.maxRoomCalls else {
            refuse(.storeFull, "this node keeps \(configuration.maxRoomCalls) room calls, the most it holds; try again when one ends")
            return nil
        }
        let kind = payload.kind ?? .video
        let call = RoomCall(id: payload.call, kind: kind,
                            participants: [RoomCall.Participant(name: name, body: body, connection: connection, node: node)])
        roomCalls[room] = call
        logger.info("room call started", metadata: ["room": "\(room)", "call": "\(call.id)", "by": "\(name)"])
        return state(of: call, in: room, event: .started, member: name, ring: configuration.defaultRing)
    }

    private func joinRoomCall(_ payload: RoomCallPayload, body: SignedBody, room: String, name: String, node: String?, connection: Int,
                              refuse: (SignalingError.Code, String) -> Void) -> RoomCallStateBody? {
        guard var call = roomCalls[room], call.id == payload.call else {
            refuse(.forbidden, "no call \(payload.call.prefix(64)) runs in \(room) (never started, or ended)")
            return nil
        }
        let participant = RoomCall.Participant(name: name, body: body, connection: connection, node: node)
        if let index = call.index(of: name) {
            // A reconnect, or another device of the name: it takes the name's place.
            call.participants[index] = participant
        } else {
            if call.participants.count >= configuration.roomCallMeshLimit, !call.forwarded, configuration.nodeIdentity != nil,
               let chosen = chooseForwarder() {
                // Past the peer-to-peer limit the call moves to a forwarder (this node's own, or
                // the nearest forwarding node's session here), and stays forwarded: moving back
                // at a leave would cost every participant n−1 new setups.
                call.forwarded = true
                call.forwarder = chosen
                logger.info("room call forwarded", metadata: ["room": "\(room)", "call": "\(call.id)", "participants": "\(call.participants.count + 1)", "forwarder": "\(chosen.name)"])
            }
            let limit = call.forwarded ? configuration.forwardedCallLimit : configuration.roomCallMeshLimit
            guard call.participants.count < limit else {
                let why = call.forwarded ? "the most this node's forwarder takes in one call"
                    : configuration.forwarder ? "the most a room call takes here"
                    : "the most a peer-to-peer room call takes (--room-call-mesh-limit); no forwarder is available for larger calls (--forwarder here, or a forwarding node's session: --forwarder-key)"
                refuse(.storeFull, "call \(call.id) in \(room) has \(call.participants.count) participants, \(why)")
                return nil
            }
            call.participants.append(participant)
        }
        roomCalls[room] = call
        return state(of: call, in: room, event: .joined, member: name)
    }

    private func leaveRoomCall(_ payload: RoomCallPayload, room: String, name: String,
                               refuse: (SignalingError.Code, String) -> Void) -> RoomCallStateBody? {
        guard let call = roomCalls[room], call.id == payload.call else {
            refuse(.forbidden, "no call \(payload.call.prefix(64)) runs in \(room) (never started, or ended)")
            return nil
        }
        guard call.index(of: name) != nil else {
            refuse(.forbidden, "\(name) is not in call \(call.id) of \(room)")
            return nil
        }
        return removeParticipant(name, from: room)
    }

    /// Takes `name` out of the call in `room`; ends the call when it was the last. Returns the
    /// state to tell the members, nil when `name` was not in a call there.
    func removeParticipant(_ name: String, from room: String) -> RoomCallStateBody? {
        guard var call = roomCalls[room], let index = call.index(of: name) else { return nil }
        call.participants.remove(at: index)
        if call.participants.isEmpty {
            roomCalls[room] = nil
            logger.info("room call ended", metadata: ["room": "\(room)", "call": "\(call.id)"])
            return state(of: call, in: room, event: .ended, member: name)
        }
        roomCalls[room] = call
        return state(of: call, in: room, event: .left, member: name)
    }

    func state(of call: RoomCall, in room: String, event: RoomCallEvent, member: String, ring: Int? = nil) -> RoomCallStateBody {
        RoomCallStateBody(room: room, call: call.id, kind: call.kind, event: event, member: member,
                          participants: call.participants.map(\.body), ring: ring,
                          limit: call.forwarded ? configuration.forwardedCallLimit : configuration.roomCallMeshLimit,
                          addresses: call.participants.map(\.name), forwarder: forwarderAssignment(for: call, in: room))
    }

    /// The signed word that `call` runs through this node's forwarder (docs/protocol.md "Room
    /// calls", *Forwarded mode*), signed anew for each state: it expires an hour later.
    func forwarderAssignment(for call: RoomCall, in room: String) -> SignedBody? {
        guard call.forwarded, let identity = configuration.nodeIdentity else { return nil }
        let forwarder = call.forwarder ?? RoomCall.Forwarder(name: ForwarderAssignment.forwarderName, key: identity.publicKeyBase64)
        let ts = Date().timeIntervalSince1970
        return ForwarderSigning.sign(ForwarderAssignment(room: room, call: call.id, forwarder: forwarder.name,
                                                         key: forwarder.key, ts: ts, expires: ts + ForwarderAssignment.maxLifetime),
                                     with: identity)
    }

    /// Sends `state` to every online member of the room here, on every device (so a member is
    /// rung on each), and over the link to each member at another node (which hands it on,
    /// Links/SignalingHub+RemoteRoomCalls.swift).
    func tellRoomCall(_ state: RoomCallStateBody, members: [String]) {
        let message = nodeMessage(to: "", .roomCall(.state(state)))
        for member in members {
            if let node = Address.parse(member)?.node {
                pushRoomCall(state, to: member, node: node)
                continue
            }
            guard let devices = handle(of: member) else { continue }
            var addressed = message
            addressed.to = member
            devices.send(addressed)
        }
    }

    /// Tells the room's members of a change made outside a request (expiry, leaving the room).
    func tellRoomCall(_ state: RoomCallStateBody) async {
        guard let members = try? await store.members(of: state.room) else { return }
        tellRoomCall(state, members: members)
    }

    /// The `current` state of each running call in the rooms of `name`: for a member who comes
    /// online (or joins the room) while a call runs, so that it can join later.
    func tellRunningRoomCalls(to name: String, rooms: [String]? = nil) async {
        guard !roomCalls.isEmpty else { return }
        // A peer of a linked node that joined a room here: over the link, after the join's ack.
        if let node = Address.parse(name)?.node, let rooms {
            for room in rooms {
                guard let call = roomCalls[room] else { continue }
                pushRoomCall(state(of: call, in: room, event: .current, member: name), to: name, node: node)
            }
            return
        }
        guard let devices = handle(of: name) else { return }
        let inRooms: [String]
        if let rooms { inRooms = rooms } else { inRooms = (try? await store.rooms(of: name)) ?? [] }
        for room in inRooms {
            guard let call = roomCalls[room] else { continue }
            devices.send(nodeMessage(to: name, .roomCall(.state(state(of: call, in: room, event: .current, member: name)))))
        }
    }

    /// Why a pairwise `call` tagged with a room call may not ring, or nil: both parties must be
    /// participants of that room call, running in a room of this node (docs/rooms.md "Join,
    /// leave, ring, end" step 3). So a tag cannot make a stranger's call look like part of a
    /// room call to a callee that accepts those without ringing.
    func roomCallPairRefusal(room: String?, roomCall: String?, caller: String, callee: String) -> String? {
        guard let room, let roomCall, let local = roomAddress(room) else {
            return "a call of a room call names a #room and the room call's id (room, roomCall)"
        }
        if let node = local.node {
            return remoteRoomCallPairRefusal(room: local.name, node: node, roomCall: roomCall, caller: caller, callee: callee)
        }
        if cluster != nil, roomCalls[local.name] == nil {
            return clusterRoomCallPairRefusal(room: local.name, roomCall: roomCall, caller: caller, callee: callee)
        }
        guard let call = roomCalls[local.name], call.id == roomCall else {
            return "no room call \(roomCall.prefix(64)) runs in \(local.name)"
        }
        // A participant's call to a forwarder: only while the call is forwarded, and only to
        // the forwarder it is assigned to.
        if ForwarderAssignment.isForwarderName(callee) {
            guard call.forwarded else { return "room call \(call.id) of \(local.name) is not forwarded" }
            let assigned = call.forwarder?.name ?? ForwarderAssignment.forwarderName
            guard callee == assigned else { return "room call \(call.id) of \(local.name) is forwarded by \(assigned), not \(callee.prefix(80))" }
            guard call.index(of: caller) != nil else { return "\(caller.prefix(80)) is not in room call \(call.id) of \(local.name); join it first" }
            return nil
        }
        for party in [caller, callee] where call.index(of: party) == nil {
            return "\(party.prefix(80)) is not in room call \(call.id) of \(local.name); join it first"
        }
        return nil
    }

    /// A member who leaves the room leaves its call.
    func roomMemberLeft(_ name: String, room: String) async {
        guard let state = removeParticipant(name, from: room) else { return }
        await tellRoomCall(state)
        // The one who left is no member any more but should hear that it is out.
        handle(of: name)?.send(nodeMessage(to: name, .roomCall(.state(state))))
    }

    /// Participants whose device has been gone for the grace leave (the sweep runs this). A
    /// participant who reconnects within it joins again from its new connection and keeps its
    /// place; a call whose participants all went away thus ends within the grace.
    func expireRoomCallParticipants(now: ContinuousClock.Instant) {
        var changes: [RoomCallStateBody] = []
        for (room, call) in roomCalls {
            var updated = call
            for index in updated.participants.indices {
                let participant = updated.participants[index]
                let present = participant.node.map { link(to: $0) != nil }
                    ?? participant.member.map { remoteOnline[participant.name]?.contains($0) == true }
                    ?? (sessions[participant.connection]?.name == participant.name)
                if present {
                    updated.participants[index].goneSince = nil
                } else if updated.participants[index].goneSince == nil {
                    updated.participants[index].goneSince = now
                }
            }
            roomCalls[room] = updated
            let expired = updated.participants.filter { $0.goneSince.map { now - $0 >= configuration.roomCallGrace } ?? false }
            for participant in expired {
                if let state = removeParticipant(participant.name, from: room) { changes.append(state) }
            }
        }
        guard !changes.isEmpty else { return }
        Task { for state in changes { await self.tellRoomCall(state) } }
    }
}
