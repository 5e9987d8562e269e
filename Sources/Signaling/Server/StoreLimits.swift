/// How much the signaling store keeps (docs/protocol.md "Limits"): every table keyed by what
/// clients send has a bound here, and undelivered messages an expiry. The defaults keep a node on
/// a small disk safe from one client with many free names: at most `bytes` of undelivered chat
/// (a little more on disk for SQLite's own bookkeeping), whatever anyone sends.
public struct StoreLimits: Sendable, Equatable {
    /// Undelivered messages in total, and their bytes (the stored frames).
    public var messages = 100_000
    public var bytes = 256 << 20
    /// Undelivered messages waiting for one recipient, and their bytes.
    public var recipientMessages = 1_000
    public var recipientBytes = 8 << 20
    /// Undelivered messages of one room (a room message counts once per recipient), and bytes.
    public var roomMessages = 10_000
    public var roomBytes = 32 << 20
    /// Seconds an undelivered message is kept; then it is dropped unread (30 days).
    public var expiry: Double = 30 * 86_400
    /// Delivered messages whose ids are kept (without their text) to recognise late resends;
    /// the oldest go first beyond it.
    public var deliveredKept = 1_000_000
    /// Names (and node addresses) bound to keys, and the seconds an unused one is kept (a
    /// year): a name not logged in for that long, in no room and with nothing waiting for it,
    /// is forgotten and may be taken by another key (clients that pinned its key notice).
    public var names = 100_000
    public var nameExpiry: Double = 365 * 86_400
    /// Rooms in total, members of one room, rooms one name belongs to.
    public var rooms = 10_000
    public var roomMembers = 200
    public var memberRooms = 100
    /// Messages a room's history keeps (the oldest go first beyond it), and the seconds one is
    /// kept (30 days): docs/protocol.md "Room history".
    public var roomHistory = 1_000
    public var historyAge: Double = 30 * 86_400
    /// Room memberships the names of one other node may hold here, in all rooms together: what
    /// a linked node can make this node keep for its peers (docs/protocol.md "Rooms across nodes").
    public var nodeMemberships = 1_000
    /// Writes (chat messages, acknowledgements, logins, joins) waiting for the store's writer:
    /// beyond it a write is refused with `store-busy` instead of waiting behind seconds of backlog.
    public var writeQueue = 16_384
    /// Bytes of write-ahead log beyond which a checkpoint waits for readers and empties the log
    /// file (``StoreCheckpointer``); below it checkpoints never wait.
    public var walBytes = 64 << 20

    public init() {}
}

/// Who may join a room (docs/protocol.md "Rooms"). The name that creates a room owns it and
/// picks its rule; the owner invites names into an `invite` room.
public enum RoomRule: String, Codable, Sendable, Equatable, CaseIterable {
    /// Anyone at the node may join.
    case open
    /// Only the owner and the names the owner invited may join.
    case invite
}
