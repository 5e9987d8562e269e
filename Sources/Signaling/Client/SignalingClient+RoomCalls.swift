import Foundation

/// One participant of a room call as this client verified it: its own signed `start` or
/// `join` for this call and room, under the key pinned for its name.
public struct RoomCallParticipant: Sendable, Equatable {
    /// As this client addresses it (`name`, or `name@host:port` for a peer of another node).
    public var name: String
    /// The key that signed its request (a device key when `owner` endorsed it).
    public var key: String
}

/// A `room-call-state` after this client checked its participants (docs/protocol.md "Room
/// calls"). A participant whose signed request does not verify, names another call or room, or
/// comes from a key other than the one pinned for its name is left out and counted in
/// `refused`: the node can hide a participant, not add one.
public struct RoomCallState: Sendable, Equatable {
    public var room: String
    public var call: String
    public var kind: CallKind
    public var event: RoomCallEvent
    public var member: String
    public var participants: [RoomCallParticipant]
    public var refused: Int
    /// `started`: seconds to ring.
    public var ring: Int?
    public var limit: Int
    /// The call's forwarder when the node says it is forwarded and its signed assignment
    /// verified under the node's pinned key (docs/protocol.md "Room calls", *Forwarded mode*).
    public var forwarder: RoomCallForwarder? = nil
    /// Why an assignment the node sent was not taken (a wrong key, expired, another call).
    public var forwarderRefusal: String? = nil
}

extension SignalingClient {
    /// Sends a signed `room-call` request (start, join or leave) for the call `call` of `room`
    /// and returns once the node took it; the new state arrives as a ``SignalingEvent/roomCall(_:)``.
    @discardableResult
    public func roomCall(_ action: RoomCallAction, room: String, call: String, kind: CallKind? = nil) async throws -> AckStatus {
        let payload = RoomCallPayload(action: action, from: name, room: room, call: call, kind: action == .start ? (kind ?? .video) : nil, ts: Self.now)
        let body = RoomCallSigning.sign(payload, with: identity)
        let answer = try await request(SignalingMessage(id: UUID().uuidString, from: name, to: room, payload: .roomCall(.request(body))))
        guard case .ack(let ack) = answer.payload else { return .ok }
        return ack.status ?? .ok
    }

    /// Checks each participant of a state the node sent: the signature of its request under
    /// its own key, that the request is for this call and room, a device key's endorsement by
    /// the owner key, and the owner (or the key) against the pin for its address, pinning it on
    /// first use. No freshness check: a participant's join is as old as its time in the call.
    ///
    /// A signer writes its name and the room relative to its own node (`alice` and `#ops@east`
    /// at west; `bob` and `#ops` at east), so the check takes each participant's address from
    /// the state (``RoomCallStateBody/addresses``, as this client writes it): the signed name
    /// must be that address's name and the signed room this room's name; the key is pinned by
    /// the address. A node that gives a participant of another node the address of one of its
    /// own (or the other way round) thus only makes it fail its pin.
    func verifyRoomCallState(_ body: RoomCallStateBody) -> RoomCallState {
        var participants: [RoomCallParticipant] = []
        var refused = 0
        let addresses = body.addresses.flatMap { $0.count == body.participants.count ? $0 : nil }
        for (index, signed) in body.participants.enumerated() {
            guard let payload = try? JSONDecoder().decode(RoomCallPayload.self, from: Data(signed.payload.utf8)),
                  payload.call == body.call, payload.action != .leave else {
                refused += 1
                continue
            }
            let address = addresses?[index] ?? payload.from
            let roomName = RoomCallSigning.roomName(body.room)
            guard (try? RoomCallSigning.verify(signed, from: address, room: { RoomCallSigning.roomName($0) == roomName },
                                               roomText: body.room, key: signed.key)) != nil else {
                refused += 1
                continue
            }
            let owner = signed.owner ?? signed.key
            if owner != signed.key {
                guard let endorsement = signed.endorsement,
                      DeviceRules.verify(endorsement: endorsement, name: Address.bareName(payload.from), key: signed.key, owner: owner) else {
                    refused += 1
                    continue
                }
            }
            guard (try? pins.check(pinAddress(of: address), key: owner)) != nil,
                  !participants.contains(where: { $0.name == address }) else {
                refused += 1
                continue
            }
            participants.append(RoomCallParticipant(name: address, key: signed.key))
        }
        var state = RoomCallState(room: body.room, call: body.call, kind: body.kind, event: body.event, member: body.member,
                                  participants: participants, refused: refused, ring: body.ring, limit: body.limit)
        if let signed = body.forwarder {
            do {
                state.forwarder = try verifyForwarder(signed, room: body.room, call: body.call)
            } catch {
                state.forwarderRefusal = error.reason
            }
        }
        return state
    }

    /// Checks a forwarder assignment against the key pinned for this client's node (taken from
    /// `welcome` on first use, ``nodeKeyWelcomed(_:)``), also for a room of another node: this
    /// client's node verified the host's assignment under the key its link proved and signed
    /// its own (docs/rooms.md "Forwarded calls for members of other nodes"), so the client
    /// trusts only the one key it pinned.
    func verifyForwarder(_ signed: SignedBody, room: String, call: String, now: Double = SignalingClient.now) throws(SignalingError) -> RoomCallForwarder {
        guard let nodeKey = pins.key(for: nodePinAddress) else {
            throw SignalingError(.badSignature, "this node sent no key at login (nodeKey), so its forwarder assignment cannot be checked")
        }
        let assignment = try ForwarderSigning.verify(signed, nodeKey: nodeKey, room: room, call: call, now: now)
        return RoomCallForwarder(address: assignment.forwarder, key: assignment.key)
    }

    /// Where the node's own key is pinned: `@host:port`, as a node's links pin it.
    nonisolated var nodePinAddress: String { "@" + nodeAuthority }

    /// Pins the key the node named in `welcome` (trust on first use); a node whose key changed
    /// is reported, and its assignments are refused (the old pin stays).
    func nodeKeyWelcomed(_ key: String?) {
        guard let key else { return }
        do {
            try pins.check(nodePinAddress, key: key)
        } catch {
            eventSink.yield(.error(error))
        }
    }
}
