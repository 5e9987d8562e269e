/// Bodies of a room's history (docs/protocol.md "Room history").

/// One message of a room's history as the hosting node keeps it.
public struct HistoryEntry: Codable, Sendable, Equatable {
    /// The node's sequence number: increasing in the order the node accepted messages, the
    /// cursor of `history` (`before`).
    public var seq: Int
    /// The sender: a name of the hosting node, or `name@host:port` of another node's peer.
    public var from: String
    /// The sender's message id.
    public var id: String
    public var text: String
    /// Unix time in seconds when the hosting node accepted it.
    public var sent: Double
    /// Over a node link only: the sender's node's signature (``ChatBody/sig``) when the sender is
    /// a peer of another node than the host.
    public var sig: String?

    public init(seq: Int, from: String, id: String, text: String, sent: Double, sig: String? = nil) {
        self.seq = seq
        self.from = from
        self.id = id
        self.text = text
        self.sent = sent
        self.sig = sig
    }
}

/// `history`. Client → node asks for the messages of `room` older than `before` (the newest
/// when absent), at most `limit` (default and cap: ``HistoryBody/maxLimit``). Node → client
/// answers with `messages` (oldest first), `more` (older ones remain) and `of` (the request's id).
public struct HistoryBody: Codable, Sendable, Equatable {
    public var room: String
    public var before: Int?
    public var limit: Int?
    public var messages: [HistoryEntry]?
    public var more: Bool?
    public var of: String?

    /// Messages one answer holds at most: a page fits one frame (100 × 16 KiB would not; the
    /// node fills a page up to ``maxPageBytes`` and says `more`).
    public static let maxLimit = 100
    public static let defaultLimit = 50
    /// Text bytes one answer carries at most, so that a page stays well inside a 1 MiB frame
    /// (docs/protocol.md "Limits": frames over 1 MiB close the WebSocket).
    public static let maxPageBytes = 256 * 1024

    public init(room: String, before: Int? = nil, limit: Int? = nil, messages: [HistoryEntry]? = nil, more: Bool? = nil, of: String? = nil) {
        self.room = room
        self.before = before
        self.limit = limit
        self.messages = messages
        self.more = more
        self.of = of
    }
}
