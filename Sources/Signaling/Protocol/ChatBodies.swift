import MeshCore
/// Bodies of chat, acknowledgements and errors (docs/protocol.md, "Chat", "ack", "error").

/// `chat`: text to a peer (`to` = name) or a room (`to` = `#room`). The sender's `id` makes it
/// idempotent: a resend with the same id is acknowledged again but not delivered twice.
public struct ChatBody: Codable, Sendable, Equatable {
    public var text: String
    /// Unix time in seconds when the node accepted it (set by the node on delivery).
    public var sent: Double?
    /// Chat to a room, as delivered: its place in the room's history (``HistoryEntry/seq``),
    /// set by the hosting node.
    public var seq: Int?
    /// Over a node link only, from a room's hosting node to a member's node: the room (as the
    /// hosting node names it, `#name`) that this message was posted to; `to` is the member.
    public var room: String?
    /// Over a node link only, room chat of a peer of another node than the room's host: that
    /// node's signature of ``ChatBody/roomAttestation(room:from:id:text:)``, so that the host
    /// and the other members' nodes can check who said it (docs/protocol.md "Rooms across nodes").
    public var sig: String?

    public init(text: String, sent: Double? = nil, seq: Int? = nil, room: String? = nil, sig: String? = nil) {
        self.text = text
        self.sent = sent
        self.seq = seq
        self.room = room
        self.sig = sig
    }

    /// The text a member's node signs for a room message of its peer: the room with its host
    /// (`#ops@host:port`), the sender with its node (`alice@host:port`), the message id and text.
    public static func roomAttestation(room: String, from: String, id: String, text: String) -> String {
        "meshnode.v1 room-chat\n\(room)\n\(from)\n\(id)\n\(text)"
    }
}

/// How the node handled a request.
public enum AckStatus: String, Codable, Sendable, Equatable {
    /// Done (and, for chat, stored until every recipient acknowledged it).
    case ok
    /// A resend of an id already accepted: nothing was done again.
    case duplicate
}

/// `ack`. Node → client: the request with id `of` was handled (`status`). Client → node: the
/// delivered message with id `of` from `sender` arrived and may be forgotten.
public struct AckBody: Codable, Sendable, Equatable {
    public var of: String
    public var status: AckStatus?
    public var sender: String?

    public init(of: String, status: AckStatus? = nil, sender: String? = nil) {
        self.of = of
        self.status = status
        self.sender = sender
    }
}

/// `error`, node → client (docs/protocol.md, "Errors").
public struct ErrorBody: Codable, Sendable, Equatable {
    public var code: SignalingError.Code
    public var reason: String
    public var of: String?

    public init(code: SignalingError.Code, reason: String, of: String? = nil) {
        self.code = code
        self.reason = reason
        self.of = of
    }

    public init(_ error: SignalingError) {
        self.init(code: error.code, reason: error.reason, of: error.of)
    }

    public var error: SignalingError { SignalingError(code, reason, of: of) }
}
