/// Bodies of presence and rooms (docs/protocol.md, "Presence" and "Rooms").

/// `subscribe` / `unsubscribe`, client → node: the names whose presence to follow.
public struct NamesBody: Codable, Sendable, Equatable {
    public var names: [String]
    public init(names: [String]) { self.names = names }
}

/// Online or offline.
public enum PresenceStatus: String, Codable, Sendable, Equatable {
    case online, offline
}

/// `presence`, node → subscriber: a name's status, with its key when the node knows it.
public struct PresenceBody: Codable, Sendable, Equatable {
    public var name: String
    public var status: PresenceStatus
    public var key: String?
    /// Over a node link, with `key`: the name's home node signs
    /// `PresenceBody.attestation(address:key:)`, and the receiving node checks it against the
    /// key it proved for that node (docs/protocol.md "Node links").
    public var sig: String?

    public init(name: String, status: PresenceStatus, key: String?, sig: String? = nil) {
        self.name = name
        self.status = status
        self.key = key
        self.sig = sig
    }

    /// The text a home node signs to say that `address` (`name@host:port`) holds `key`.
    public static func attestation(address: String, key: String) -> String {
        "meshnode.v1 presence-key\n\(address)\n\(key)"
    }
}

/// `join` / `leave`, client → node: a room name starting with `#`. A `join` that creates the
/// room may set its `rule` (default: the node's `room-rule`); otherwise `rule` is ignored.
public struct RoomBody: Codable, Sendable, Equatable {
    public var room: String
    public var rule: RoomRule?
    public init(room: String, rule: RoomRule? = nil) {
        self.room = room
        self.rule = rule
    }
}

/// `invite`, client → node: the owner of an `invite` room lets `name` join it.
public struct InviteBody: Codable, Sendable, Equatable {
    public var room: String
    public var name: String
    public init(room: String, name: String) {
        self.room = room
        self.name = name
    }
}

/// One member of a room and whether it is online now.
public struct RoomMember: Codable, Sendable, Equatable {
    public var name: String
    public var online: Bool
    public var key: String?

    public init(name: String, online: Bool, key: String?) {
        self.name = name
        self.online = online
        self.key = key
    }
}

/// `members`: client → node asks with `room` only; node → client answers with `members`
/// and `of` (the id of the request).
public struct MembersBody: Codable, Sendable, Equatable {
    public var room: String
    public var members: [RoomMember]?
    public var of: String?

    public init(room: String, members: [RoomMember]? = nil, of: String? = nil) {
        self.room = room
        self.members = members
        self.of = of
    }
}

/// What happened in a room.
public enum RoomEvent: String, Codable, Sendable, Equatable {
    case joined, left
}

/// `room`, node → room members: someone joined or left.
public struct RoomEventBody: Codable, Sendable, Equatable {
    public var room: String
    public var member: String
    public var event: RoomEvent

    public init(room: String, member: String, event: RoomEvent) {
        self.room = room
        self.member = member
        self.event = event
    }
}
