import Foundation

/// The room's node's word that a room call is forwarded, and by whom (docs/protocol.md "Room
/// calls", *Forwarded mode*): the signed payload of ``RoomCallStateBody/forwarder``.
///
/// A participant takes it only under the key it pinned for its node, and then binds its call to
/// the forwarder to ``key``: the forwarder is checked by key, not by the name it logs in with.
public struct ForwarderAssignment: Codable, Sendable, Equatable {
    /// The room (as the state names it) and the room call's id.
    public var room: String
    public var call: String
    /// The forwarder's address as the node writes it (`forwarder` for the node's own).
    public var forwarder: String
    /// The key the forwarder signs its call setup with.
    public var key: String
    /// Unix seconds when signed, and until when a participant may act on it (at most
    /// ``maxLifetime`` later: the node signs a fresh one with every state it sends).
    public var ts: Double
    public var expires: Double
    /// Only in an assignment a member's node vouches for (docs/rooms.md "Forwarded calls for
    /// members of other nodes"): the room's node (`host:port`, as the member's node writes it)
    /// and the node key under which the member's node verified that node's own assignment.
    /// Nil in an assignment the room's node signs for its own peers.
    public var host: String? = nil
    public var hostKey: String? = nil

    /// The name under which a node's forwarder logs in to the node, with the node key; reserved.
    public static let forwarderName = "forwarder"
    /// Names beginning with this are reserved for forwarders of other nodes (docs/protocol.md
    /// "Room calls", *Forwarded mode* item 7): `forwarder.` + 16 hex digits of the node key.
    public static let remotePrefix = "forwarder."

    /// The name a forwarding node with `key` logs in under at another node, nil for no key.
    public static func remoteName(forKey key: String) -> String? {
        guard let raw = Identity.decodeKey(key) else { return nil }
        return remotePrefix + raw.prefix(8).map { String(format: "%02x", $0) }.joined()
    }

    /// Whether `name` is a forwarder's: the node's own or another node's.
    public static func isForwarderName(_ name: String) -> Bool {
        name == forwarderName || name.hasPrefix(remotePrefix)
    }
    /// The most participants of a forwarded call (the forwarding core's bound).
    public static let maxParticipants = 20

    /// The longest an assignment is good for, in seconds.
    public static let maxLifetime: Double = 3600

    public init(room: String, call: String, forwarder: String, key: String, ts: Double, expires: Double,
                host: String? = nil, hostKey: String? = nil) {
        self.room = room
        self.call = call
        self.forwarder = forwarder
        self.key = key
        self.ts = ts
        self.expires = expires
        self.host = host
        self.hostKey = hostKey
    }
}

/// A room call's forwarder as a participant verified it (``ForwarderAssignment``).
public struct RoomCallForwarder: Sendable, Equatable {
    /// Its address as this client writes it.
    public var address: String
    /// The key its call-setup messages must be signed with.
    public var key: String
}
