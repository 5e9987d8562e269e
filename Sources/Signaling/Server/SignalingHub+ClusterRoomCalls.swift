import Foundation

/// Room calls in cluster mode (docs/cluster.md "Room calls across members"). One member — the
/// call's *host* — keeps a room call's state in memory, as a single node does
/// (SignalingHub+RoomCalls.swift); the shared table `room_calls` says which member hosts the call
/// of each room. A member whose client asks about a room call checks the request (signature
/// against the key the client logged in with, membership by name) and hands it to the host
/// through the router; the host checks it again, updates the call and answers through the router
/// to that client's connection. States reach every member's clients as any frame for a name
/// does. Each member remembers the latest state it handed on (a ``RemoteRoomCall``, as for a
/// room of another node), to check the pairwise calls its clients tag with the call and their
/// calls to the host's forwarder.
///
/// A forwarded call runs through the host member's own forwarder: SignalingHub+ClusterForwarder.swift.
extension SignalingHub {
    /// Router tokens (in the place of a recipient name, which never starts with these): a
    /// request for the host, `!MEMBER/CONNECTION` (whose connection asked), and the host's
    /// answer to that connection, `=CONNECTION`.
    public static let clusterRequestMark: Character = "!"
    public static let clusterReplyMark: Character = "="

    /// A verified `room-call` request of a local client, in cluster mode: decides which member
    /// hosts the room's call and hands the request there (or runs it here).
    func clusterRoomCallRequest(_ payload: RoomCallPayload, body: SignedBody, message: SignalingMessage, room: String, name: String,
                                connection: Int, reply: ConnectionHandle, cluster: any ClusterRouting) async {
        let id = message.id
        func refuse(_ code: SignalingError.Code, _ reason: String) {
            reply.send(errorMessage(SignalingError(code, reason, of: id), to: name))
        }
        // Members only, checked here, where the client proved its key: a non-member's request
        // never reaches the host (which checks again: the store is shared).
        do {
            guard try await store.members(of: room).contains(name) else {
                return refuse(.notMember, "join \(room) before calling in it; only its members start, join or hear its calls")
            }
        } catch {
            return refuse(error.code, error.reason)
        }
        let host: String?
        do {
            host = try await cluster.roomCallHost(room: room, call: payload.call, claim: payload.action == .start)
        } catch {
            return refuse(error.code, error.reason)
        }
        guard let host, host != cluster.member else {
            // This member hosts the call (or claimed the room for a start), or none runs: the
            // single node's rules answer (a join or leave of no call is refused there).
            await roomCallRequest(payload, body: body, id: id, room: room, name: name, node: nil, connection: connection, reply: reply)
            return
        }
        // A start goes to the host too: it refuses it (a call runs) and tells the current state.
        if payload.action == .start, !allowRoomCallStart(on: connection) {
            return refuse(.rateLimited, "more than \(Int(Self.roomCallStartBurst)) room calls started at once (one per \(Int(1 / Self.roomCallStartRate)) s on average); each start rings a whole room")
        }
        let forwarded = SignalingMessage(id: id, from: name, to: room, payload: .roomCall(.request(body)))
        cluster.deliver(text: SignalingCodec.encode(forwarded), to: "\(Self.clusterRequestMark)\(cluster.member)/\(connection)", at: host)
    }

    /// The per-connection start limit of ``startRoomCall``, for a start handed to another member.
    private func allowRoomCallStart(on connection: Int) -> Bool {
        var limiter = sessions[connection]?.roomCallStarts
            ?? RateLimiter(rate: Self.roomCallStartRate, burst: Self.roomCallStartBurst, now: now())
        let allowed = limiter.allow(now: now())
        sessions[connection]?.roomCallStarts = limiter
        return allowed
    }

    /// A name joined `room` here: the member hosting the room's call, if another does, tells it
    /// the call (`current`), as this member tells the calls it hosts to a name that joins one
    /// of their rooms (a page that opens the room sees the call running and can join it).
    func askHostToTell(room: String, name: String, cluster: any ClusterRouting) async {
        guard let host = try? await cluster.roomCallHost(room: room, call: "", claim: false), host != cluster.member else { return }
        let notice = SignalingMessage(id: UUID().uuidString, from: name, to: room, payload: .join(RoomBody(room: room)))
        cluster.deliver(text: SignalingCodec.encode(notice), to: "\(Self.clusterRequestMark)\(cluster.member)/0", at: host)
    }

    /// A frame the router brought with a token instead of a name: a request for this member as
    /// a call's host, or the host's answer to one of this member's connections.
    public func clusterRequest(text: String, token: String) async {
        guard let cluster else { return }
        if token.first == Self.clusterRequestMark, let notice = try? SignalingCodec.decode(text), case .join(let body) = notice.payload {
            // Not a join (the sender's member made it, ``askHostToTell``): the call of the room
            // is told to the name, a member of it by the shared store.
            guard body.room == notice.to, Address.isValidRoom(body.room), roomCalls[body.room] != nil,
                  (try? await store.members(of: body.room).contains(notice.from)) == true else { return }
            return await tellRunningRoomCalls(to: notice.from, rooms: [body.room])
        }
        if token.first == Self.clusterReplyMark {
            // The answer goes to the connection that asked, if it is still the same name's.
            guard let connection = Int(token.dropFirst()), let session = sessions[connection],
                  let message = try? SignalingCodec.decode(text), session.name == message.to else { return }
            return session.handle.send(text: text)
        }
        let parts = token.dropFirst().split(separator: "/", maxSplits: 1)
        guard token.first == Self.clusterRequestMark, parts.count == 2, let connection = Int(parts[1]),
              let message = try? SignalingCodec.decode(text), case .roomCall(.request(let body)) = message.payload,
              Address.isValidRoom(message.to), let sender = Address.parse(message.from), sender.node == nil else {
            return logLimited(.notice, "cluster: a member sent a request this member cannot read", kind: "cluster request", connection: nil)
        }
        let origin = String(parts[0]), name = message.from, room = message.to
        let reply = ConnectionHandle(id: -1, hostHint: nil,
                                     sink: .output(ClusterOutput(routing: cluster, name: "\(Self.clusterReplyMark)\(connection)", member: origin)))
        // The origin member checked the signature against the key its client logged in with;
        // checked here against the body's key, which every member's clients check against
        // their pins (the state carries the signed body).
        let payload: RoomCallPayload
        do {
            payload = try RoomCallSigning.verify(body, from: name, room: room, key: body.key, of: message.id)
        } catch {
            return reply.send(errorMessage(error, to: name))
        }
        await roomCallRequest(payload, body: body, id: message.id, room: room, name: name, node: nil, connection: -1, reply: reply)
        guard var call = roomCalls[room] else { return }
        if let index = call.index(of: name), call.participants[index].connection == -1 {
            // Its device is at `origin`: present while the name is online there.
            call.participants[index].member = origin
            roomCalls[room] = call
        } else if payload.action == .start, call.index(of: name) == nil {
            // A start that found a call running: the requester learns it, to join it.
            reply.send(nodeMessage(to: name, .roomCall(.state(state(of: call, in: room, event: .current, member: name)))))
        }
    }

    /// The calls this member hosts (room → call id), which the router keeps in `room_calls`.
    public var hostedRoomCalls: [String: String] {
        roomCalls.mapValues(\.id)
    }

    /// A `room-call-state` the host sent for a name here: remembered (bounded, as remote rooms'
    /// are) for the check of pairwise calls tagged with the call, with the forwarder its
    /// assignment names. The members share the node key that signs assignments, so this member
    /// verifies it as its clients do (under the key they pinned for the node).
    func rememberClusterRoomCall(_ state: RoomCallStateBody) {
        guard roomCalls[state.room] == nil else { return }
        if state.event == .ended {
            // Also when not remembered: routes of a participant that logged in here after its
            // member died may name a call whose states this member never handed on.
            if (clusterRoomCalls[state.room]?.call ?? state.call) == state.call { forgetClusterRoomCall(state.room) }
            return
        }
        guard clusterRoomCalls[state.room] != nil || clusterRoomCalls.count < Self.maxRemoteRoomCalls,
              (state.addresses?.count ?? 0) <= Self.maxPushedParticipants else { return }
        let names = state.addresses ?? state.participants.compactMap { body in
            (try? JSONDecoder().decode(RoomCallPayload.self, from: Data(body.payload.utf8)))?.from
        }
        var forwarder: String?
        if let signed = state.forwarder, let nodeKey = configuration.nodeIdentity?.publicKeyBase64 {
            do {
                forwarder = try ForwarderSigning.verify(signed, nodeKey: nodeKey, room: state.room, call: state.call,
                                                        now: Date().timeIntervalSince1970).forwarder
            } catch {
                logLimited(.warning, "cluster: a room call state's forwarder assignment does not verify under the node key", kind: "cluster assignment",
                           connection: nil, metadata: ["room": "\(state.room)", "reason": "\(error.reason)"])
            }
        }
        if let previous = clusterRoomCalls[state.room], previous.call != state.call { forgetClusterRoomCall(state.room) }
        clusterRoomCalls[state.room] = RemoteRoomCall(call: state.call, participants: names, forwarder: forwarder, updated: now())
    }

    /// Why a pairwise call tagged with `roomCall` of `room`, hosted by another member, may not
    /// ring: both parties must be participants as the host's latest state listed them, or the
    /// callee the forwarder of the call's assignment and the caller a participant.
    func clusterRoomCallPairRefusal(room: String, roomCall: String, caller: String, callee: String) -> String? {
        guard let call = clusterRoomCalls[room] else {
            return "no room call \(roomCall.prefix(64)) runs in \(room)"
        }
        return call.pairRefusal(room: room, roomCall: roomCall, caller: caller, callee: callee)
    }

    /// Forgets remembered calls of rooms whose host went away (`hosted`: the rooms the
    /// `room_calls` table still lists) and those no state refreshed within the remote expiry.
    public func forgetClusterRoomCalls(keeping hosted: Set<String>) {
        let instant = now()
        for (room, call) in clusterRoomCalls where !hosted.contains(room) || instant - call.updated >= Self.remoteRoomCallExpiry {
            forgetClusterRoomCall(room)
        }
    }

    /// Forgets a remembered call and the routes of its participants' calls to its forwarder.
    private func forgetClusterRoomCall(_ room: String) {
        clusterRoomCalls[room] = nil
        clusterForwarderRoutes = clusterForwarderRoutes.filter { $0.value.room != room }
    }

    /// The rooms of the calls this member remembers from other members' states.
    public var rememberedClusterRoomCalls: [String] { Array(clusterRoomCalls.keys) }

    /// A name came online at another member: a call hosted here in one of its rooms is told
    /// to it there (`current`), so that it can join — as a login here is told.
    func tellHostedRoomCalls(toNameAt name: String) {
        guard !roomCalls.isEmpty else { return }
        Task { await self.tellRunningRoomCalls(to: name) }
    }
}
