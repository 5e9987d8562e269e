import Foundation

/// Room calls in a room of another node (docs/rooms.md "Room calls in a room of another node").
/// The room's host keeps the call's state (Server/SignalingHub+RoomCalls.swift); a member's own
/// node relays the member's signed `room-call` requests to it over their link, as it relays
/// `join` and room chat, and hands the host's `room-call-state` pushes to the members the host
/// confirmed. It remembers the latest state of each such call, so that it can check the
/// pairwise calls its peers tag with it. In a cluster, a member remembers the calls other
/// members host in the same form (Server/SignalingHub+ClusterRoomCalls.swift).
struct RemoteRoomCall {
    let call: String
    /// The participants' addresses as this node writes them (`alice`, `bob@east:8443`).
    var participants: [String]
    /// The forwarder of a forwarded call as this node writes it (`forwarder@east:8443`; in a
    /// cluster `forwarder`, the host member's), from the host's assignment this node verified
    /// (and, for another node's, vouched for); its participants may call it.
    var forwarder: String? = nil
    var updated: ContinuousClock.Instant
}

extension RemoteRoomCall {
    /// Why a pairwise `call` tagged with `roomCall` (of `room`, as reasons name it) may not ring
    /// between `caller` and `callee`, or nil: both must be participants as the host's latest
    /// state listed them, or the callee the forwarder its verified assignment named and the
    /// caller a participant. For rooms of linked nodes and, in a cluster, calls hosted by
    /// another member (Server/SignalingHub+ClusterRoomCalls.swift).
    func pairRefusal(room: String, roomCall: String, caller: String, callee: String) -> String? {
        guard call == roomCall else {
            return "no room call \(roomCall.prefix(64)) runs in \(room) as far as this node heard from its host"
        }
        // A participant's call to the call's forwarder, as the verified assignment named it.
        if let forwarder, callee == forwarder || ForwarderAssignment.isForwarderName(Address.bareName(callee)) {
            guard callee == forwarder else { return "room call \(roomCall.prefix(64)) of \(room) is forwarded by \(forwarder), not \(callee.prefix(80))" }
            guard participants.contains(caller) else { return "\(caller.prefix(80)) is not in room call \(roomCall.prefix(64)) of \(room); join it first" }
            return nil
        }
        for party in [caller, callee] where !participants.contains(party) {
            return "\(party.prefix(80)) is not in room call \(roomCall.prefix(64)) of \(room); join it first"
        }
        return nil
    }
}

extension SignalingHub {
    /// Remote room calls remembered at once, node-wide; a push beyond it is handed on but not
    /// remembered (its pairwise calls are refused until one ends).
    static let maxRemoteRoomCalls = 1024
    /// A remembered remote state no push refreshed for this long is forgotten: the host pushes
    /// every change, and a call nobody joins or leaves for 12 h is rare; its participants keep
    /// their pairwise calls, only new ones are refused.
    static let remoteRoomCallExpiry: Duration = .seconds(12 * 3600)
    /// Participants a pushed state may list: a room call takes at most a few (the host's
    /// `--room-call-mesh-limit`); this bounds what a host can make this node keep and forward.
    static let maxPushedParticipants = 64

    // MARK: - The member's node

    /// Relays a local member's verified request (`body` with its device proof) to the room's
    /// host. This node checks what it knows: that the host confirmed the name as a member; the
    /// host checks the rest (freshness, replay, the call's state) and its answer comes back
    /// through the relay table.
    func relayRoomCall(_ body: SignedBody, message: SignalingMessage, room: String, node: String, name: String,
                       reply: ConnectionHandle) async {
        guard (try? await store.isRemoteMember(name, of: "\(room)@\(node)")) == true else {
            return reply.send(errorMessage(SignalingError(.notMember, "join \(message.to.prefix(80)) before calling in it; only its members start, join or hear its calls",
                                                          of: message.id), to: name))
        }
        relayToHost(SignalingMessage(id: message.id, from: name, to: room, payload: .roomCall(.request(body))),
                    room: room, node: node, name: name, reply: reply)
    }

    /// A `room-call-state` the host pushes for a local member: handed on (with the room and
    /// every address as this node writes them) only to a name the host confirmed as a member,
    /// and remembered for the pairwise-call check.
    func pushedRoomCall(_ body: RoomCallStateBody, message: SignalingMessage, host: String, reply: ConnectionHandle) async {
        func refuse(_ error: SignalingError) { reply.send(errorMessage(error, to: SignalingProtocol.nodeAddress)) }
        guard let target = normalise(message.to), !target.contains("@"), Address.isValidRoom(body.room), Address.parse(body.member) != nil else {
            return refuse(SignalingError(.badField, "a room-call-state over a link names a local member in to, the host's #room and a member", of: message.id))
        }
        let addresses = body.addresses ?? []
        guard addresses.count == body.participants.count, addresses.count <= Self.maxPushedParticipants,
              addresses.allSatisfy({ Address.parse($0) != nil }) else {
            return refuse(SignalingError(.badField, "a room-call-state over a link lists at most \(Self.maxPushedParticipants) participants, each with its address", of: message.id))
        }
        let room = "\(body.room)@\(host)"
        guard (try? await store.isRemoteMember(target, of: room)) == true else {
            logLimited(.notice, "node link: room-call-state for a name that is not in the room", kind: "room-call push", connection: nil, metadata: ["node": "\(host)"])
            return refuse(SignalingError(.forbidden, "\(target) is not a member of \(room) as far as this node knows", of: message.id))
        }
        var state = body
        state.room = room
        state.member = fromHost(body.member, host: host)
        state.addresses = addresses.map { fromHost($0, host: host) }
        if let signed = body.forwarder {
            // The host signed it with its node key, which this node's clients do not know: this
            // node checks it under the key the link proved and vouches for it with its own
            // (docs/rooms.md "Forwarded calls for members of other nodes"). A forged, replayed
            // or expired one is refused with the whole push: the state is the host's word.
            do {
                state.forwarder = try vouchForAssignment(signed, host: host, room: body.room, call: body.call)
            } catch {
                logLimited(.warning, "node link: forwarder assignment refused", kind: "forwarder assignment", connection: nil,
                           metadata: ["node": "\(host)", "code": "\(error.code)", "reason": "\(error.reason)"])
                return refuse(SignalingError(error.code, "the forwarder assignment for \(target): \(error.reason)", of: message.id))
            }
        }
        rememberRemoteRoomCall(state, now: now())
        handle(of: target)?.send(nodeMessage(to: target, .roomCall(.state(state))))
    }

    private func rememberRemoteRoomCall(_ state: RoomCallStateBody, now: ContinuousClock.Instant) {
        if state.event == .ended {
            if remoteRoomCalls[state.room]?.call == state.call { remoteRoomCalls[state.room] = nil }
            return
        }
        guard remoteRoomCalls[state.room] != nil || remoteRoomCalls.count < Self.maxRemoteRoomCalls else {
            return logLimited(.notice, "remote room calls: table full, state not remembered", kind: "remote room calls", connection: nil,
                              metadata: ["room": "\(state.room)"])
        }
        let forwarder = state.forwarder.flatMap { try? JSONDecoder().decode(ForwarderAssignment.self, from: Data($0.payload.utf8)).forwarder }
        remoteRoomCalls[state.room] = RemoteRoomCall(call: state.call, participants: state.addresses ?? [], forwarder: forwarder, updated: now)
    }

    /// The host's assignment checked under the key the link to `host` proved (a node record
    /// proven by dial-back or the link's own proof, never a key the push names), then signed
    /// anew by this node for its clients.
    private func vouchForAssignment(_ signed: SignedBody, host: String, room: String, call: String) throws(SignalingError) -> SignedBody {
        guard let hostKey = linkKeys[host] else {
            throw SignalingError(.notProven, "this node holds no proven key of \(host), so it cannot check its forwarder assignment")
        }
        guard let identity = configuration.nodeIdentity else {
            throw SignalingError(.unavailable, "this node has no node key to vouch for a forwarder assignment with")
        }
        return try ForwarderSigning.vouch(signed, hostKey: hostKey, host: host, room: room, call: call,
                                          now: Date().timeIntervalSince1970, with: identity)
    }

    /// Why a pairwise `call` tagged with a call of `room` at `node` may not ring, or nil: both
    /// parties must be participants as the host's latest push listed them.
    func remoteRoomCallPairRefusal(room: String, node: String, roomCall: String, caller: String, callee: String) -> String? {
        let key = "\(room)@\(node)"
        guard let call = remoteRoomCalls[key] else {
            return "no room call \(roomCall.prefix(64)) runs in \(key) as far as this node heard from its host"
        }
        return call.pairRefusal(room: key, roomCall: roomCall, caller: caller, callee: callee)
    }

    /// Forgets what no push refreshed within the expiry, and the calls of hosts whose link is
    /// down (the host expires this node's participants then too; a new push after the link
    /// comes back brings the state again).
    func expireRemoteRoomCalls(now: ContinuousClock.Instant) {
        guard !remoteRoomCalls.isEmpty else { return }
        remoteRoomCalls = remoteRoomCalls.filter { room, call in
            guard now - call.updated < Self.remoteRoomCallExpiry, let host = roomAddress(room)?.node else { return false }
            return link(to: host) != nil
        }
    }

    // MARK: - The host

    /// A `room-call` request of a linked node's peer (`message.from`, `name@node`) about a room
    /// here. The link vouches for who sent it (as for room chat); the signature is checked
    /// against the body's own key, which the members' clients check against their pins. The
    /// signed room is the signer's name for it: this room at one of this node's addresses.
    func linkedRoomCallRequest(_ body: SignedBody, message: SignalingMessage, node: String, reply: ConnectionHandle) async {
        let member = message.from
        guard Address.isValidRoom(message.to) else {
            return reply.send(errorMessage(SignalingError(.badField, "a room is # followed by a valid name", of: message.id), to: member))
        }
        let own = ownAddress(toward: node)
        let nodeAddress = configuration.nodeAddress
        let authorities = configuration.authorities
        func isThisRoom(_ signed: String) -> Bool {
            guard signed.hasPrefix("#"), let parsed = Address.parse(String(signed.dropFirst())), "#" + parsed.name == message.to,
                  let at = parsed.node else { return false }
            return at == own || at == nodeAddress || authorities.contains(at)
        }
        let payload: RoomCallPayload
        do {
            payload = try RoomCallSigning.verify(body, from: member, room: isThisRoom, roomText: "\(message.to)@\(own ?? nodeAddress ?? "this node")",
                                                 key: body.key, of: message.id)
        } catch {
            return reply.send(errorMessage(error, to: member))
        }
        await roomCallRequest(payload, body: body, id: message.id, room: message.to, name: member, node: node, connection: reply.id, reply: reply)
    }

    /// Why a call relayed by the link to `node` from `caller` (`alice@west`) may not reach this
    /// node's forwarder `forwarder`, or nil. The caller names the room as it writes it
    /// (`#ops@east`): one of this node's addresses, as for its room-call requests.
    func linkedForwarderCallRefusal(_ payload: CallPayload?, caller: String, forwarder: String, node: String) -> String? {
        guard let payload, let room = payload.room, let roomCall = payload.roomCall else {
            return "a call to \(forwarder) is a participant's call of a forwarded room call (room, roomCall)"
        }
        guard room.hasPrefix("#"), let parsed = Address.parse(String(room.dropFirst())), let at = parsed.node,
              at == ownAddress(toward: node) || at == configuration.nodeAddress || configuration.authorities.contains(at) else {
            return "\(room.prefix(80)) is not a room of this node"
        }
        return roomCallPairRefusal(room: "#" + parsed.name, roomCall: roomCall, caller: caller, callee: forwarder)
    }

    /// Sends `state` over the link to `member`'s node, with every address as that node's peers
    /// see them from there (this node's own peers qualified with its address).
    func pushRoomCall(_ state: RoomCallStateBody, to member: String, node: String) {
        guard let link = link(to: node) else { return }
        var pushed = state
        pushed.member = linkAddress(state.member, toward: node)
        pushed.addresses = state.addresses?.map { linkAddress($0, toward: node) }
        link.send(nodeMessage(to: member, .roomCall(.state(pushed))))
    }
}
