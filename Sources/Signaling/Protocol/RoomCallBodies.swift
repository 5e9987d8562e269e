import Foundation

/// Bodies of room calls (docs/protocol.md "Room calls", docs/rooms.md): a call of a whole room,
/// whose state the room's hosting node keeps. A member sends a signed `room-call` request
/// (start, join, leave); the node answers with `ack` and tells every online member the call's new
/// state in a `room-call-state`.

/// What a member asks of a room call.
public enum RoomCallAction: String, Codable, Sendable, CaseIterable {
    /// Start a call in the room (none may run there); the starter is its first participant and
    /// the other members are rung.
    case start
    /// Join the call that runs in the room (the `call` id must be its id).
    case join
    /// Leave it; the call ends when the last participant leaves.
    case leave
}

/// The signed content of a `room-call` request. `from` and `room` repeat the envelope (`from`,
/// `to`) so that a node cannot replay a signed request as another member's or in another room.
public struct RoomCallPayload: Codable, Sendable, Equatable {
    public var action: RoomCallAction
    public var from: String
    /// The room, `#name`, as the envelope's `to` names it.
    public var room: String
    /// The room call's id, chosen by its starter: 1–64 printable ASCII characters, no spaces.
    public var call: String
    /// `start` only: what the call carries (default `video`).
    public var kind: CallKind?
    /// Unix seconds when signed; refused outside ±120 s of the node's clock (as call setup).
    public var ts: Double

    public init(action: RoomCallAction, from: String, room: String, call: String, kind: CallKind? = nil, ts: Double) {
        self.action = action
        self.from = from
        self.room = room
        self.call = call
        self.kind = kind
        self.ts = ts
    }
}

/// What changed in a room call.
public enum RoomCallEvent: String, Codable, Sendable, Equatable {
    /// The call began: members who are not in it are rung (``RoomCallStateBody/ring``).
    case started
    case joined
    case left
    /// The last participant left (or was gone too long): the call is over.
    case ended
    /// The current state, sent to a member who comes online, joins the room or joins again
    /// (a reconnect): nothing changed.
    case current
}

/// `room-call-state`, node → every online member of the room (every device): the call after a
/// change. `participants` holds each participant's own signed `start` or `join`, so a member
/// checks with the keys it pinned that each of them joined: the node cannot add anyone.
public struct RoomCallStateBody: Codable, Sendable, Equatable {
    public var room: String
    public var call: String
    public var kind: CallKind
    public var event: RoomCallEvent
    /// Who started, joined or left (for `ended`: the last to leave).
    public var member: String
    /// The signed requests of the participants now, in the order they joined.
    public var participants: [SignedBody]
    /// `started` only: seconds a member's client rings (the call's `ring`, the node's default).
    public var ring: Int?
    /// The most participants this call takes now (peer to peer: `--room-call-mesh-limit`).
    public var limit: Int
    /// Each participant's address as the receiver writes it, in the order of `participants`
    /// (`bob`, `alice@west:8443`). A signed request names its sender and room relative to the
    /// signer's own node, so a member of another node checks the signature's name against this
    /// address and pins by it (docs/rooms.md "Room calls in a room of another node"). Absent
    /// from a node that predates it: then each payload's own `from`.
    public var addresses: [String]?
    /// A forwarded call (docs/protocol.md "Room calls", *Forwarded mode*): the room's node's
    /// signed ``ForwarderAssignment``; absent while the call is peer to peer.
    public var forwarder: SignedBody?

    public init(room: String, call: String, kind: CallKind, event: RoomCallEvent, member: String,
                participants: [SignedBody], ring: Int? = nil, limit: Int, addresses: [String]? = nil, forwarder: SignedBody? = nil) {
        self.room = room
        self.call = call
        self.kind = kind
        self.event = event
        self.member = member
        self.participants = participants
        self.ring = ring
        self.limit = limit
        self.addresses = addresses
        self.forwarder = forwarder
    }
}

/// A room-call message's type with its body (like ``DevicePayload``).
public enum RoomCallMessage: Sendable, Equatable {
    /// `room-call`, member → node: a signed ``RoomCallPayload``.
    case request(SignedBody)
    /// `room-call-state`, node → members.
    case state(RoomCallStateBody)

    public var type: MessageType {
        switch self {
        case .request: .roomCall
        case .state: .roomCallState
        }
    }
}
