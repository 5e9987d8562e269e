import Foundation

/// What the hub keeps across restarts and shares with other members of a cluster: name
/// bindings (TOFU pins), devices, rooms and their history, and every chat message per recipient
/// until it is acknowledged (docs/protocol.md "Delivery guarantees", docs/cluster.md).
///
/// Two stores stand behind it: ``SignalingStore`` (SQLite, the embedded default of a single
/// node) and `SignalingCluster.PostgresStore` (several `meshnode serve` processes acting as one
/// node). Every write must be durable before it returns: the hub acknowledges chat only then.
/// Every table is bounded by ``limits``; a write past a bound throws `store-full`.
public protocol SignalingStorage: Sendable {
    /// The bounds of every table.
    var limits: StoreLimits { get }

    // Names (TOFU at the node) and devices (docs/protocol.md "Devices").
    /// The key bound to `name`, if any.
    func key(of name: String) async throws(SignalingError) -> String?
    /// Binds `name` to `key` on first use; returns the key bound afterwards.
    func bind(name: String, key: String) async throws(SignalingError) -> String
    /// The owner's endorsement of `key` for `name`, nil when `key` is not an endorsed device.
    func endorsement(name: String, key: String) async throws(SignalingError) -> String?
    /// Marks `name` as used now (unused names expire).
    func markSeen(name: String) async throws(SignalingError)
    /// The endorsed devices of `name` (not its owner key).
    func devices(of name: String) async throws(SignalingError) -> [SignalingStore.Device]
    /// Adds an endorsed device; false when it was there already.
    func addDevice(name: String, key: String, endorsement: String, limit: Int) async throws(SignalingError) -> Bool
    /// Removes an endorsed device; false when it was not there.
    func removeDevice(name: String, key: String) async throws(SignalingError) -> Bool

    // Rooms.
    /// The owner and rule of `room`, nil when it does not exist.
    func room(_ room: String) async throws(SignalingError) -> SignalingStore.Room?
    /// Adds a member (creating the room with `member` as owner); false when it already was one.
    func join(room: String, member: String, rule: RoomRule) async throws(SignalingError) -> Bool
    /// Removes a member; false when it was not one.
    func leave(room: String, member: String) async throws(SignalingError) -> Bool
    /// The owner lets `name` join an invite-only room; false when invited already.
    func invite(room: String, name: String) async throws(SignalingError) -> Bool
    /// The members of `room`, sorted.
    func members(of room: String) async throws(SignalingError) -> [String]
    /// The rooms `member` belongs to.
    func rooms(of member: String) async throws(SignalingError) -> [String]
    /// Stores a room message in the history and for `recipients`, as one write.
    func post(room: String, sender: String, id: String, text: String, sent: Double, sig: String?, recipients: [String],
              frame: @escaping @Sendable (Int) -> String) async throws(SignalingError) -> SignalingStore.Posted
    /// A page of `room`'s history, oldest first: up to `limit` messages older than `before`,
    /// younger than `limits.historyAge`, stopping once the texts pass `maxBytes`.
    func history(of room: String, before: Int?, limit: Int, maxBytes: Int, now: Date) async throws(SignalingError) -> (entries: [HistoryEntry], more: Bool)

    // Rooms of this node with members at other nodes (docs/protocol.md "Rooms across nodes").
    /// Memberships held by names of `node`.
    func memberships(ofNode node: String) async throws(SignalingError) -> Int
    /// Records that local `member` joined `room` at another node.
    func addRemoteRoom(_ room: String, member: String) async throws(SignalingError)
    /// Records that local `member` left `room` at another node.
    func removeRemoteRoom(_ room: String, member: String) async throws(SignalingError)
    /// Whether local `member` is in `room` at another node.
    func isRemoteMember(_ member: String, of room: String) async throws(SignalingError) -> Bool

    // Messages (docs/protocol.md "Delivery guarantees").
    /// The key bound to `name` when a cache has it (nil: ask ``key(of:)``), without waiting.
    func cachedKey(of name: String) -> String?
    /// A chat message's duplicate check and store as one write; `then` runs once it is durable
    /// (or failed), on any thread.
    func enqueueChat(sender: String, id: String, recipients: [String], frame: String,
                     then: @escaping @Sendable (Result<SignalingStore.Enqueued, SignalingError>) -> Void)
    /// ``markDelivered(recipient:sender:id:)`` without waiting; `then` runs once it committed.
    func markDelivered(recipient: String, sender: String, id: String, then: @escaping @Sendable (Result<Void, SignalingError>) -> Void)
    /// Stores one message per recipient, durably; returns the recipients that are new.
    func enqueue(sender: String, id: String, recipients: [String], frame: String, room: String?) async throws(SignalingError) -> [String]
    /// Whether `sender` already sent a message with `id`.
    func hasMessage(sender: String, id: String) async throws(SignalingError) -> Bool
    /// Messages `recipient` has not acknowledged, oldest first.
    func pending(for recipient: String, limit: Int) async throws(SignalingError) -> [SignalingStore.Pending]
    /// The recipient acknowledged a message.
    func markDelivered(recipient: String, sender: String, id: String) async throws(SignalingError)
    /// Messages waiting for the link to `node`.
    func pending(forNode node: String, limit: Int) async throws(SignalingError) -> [SignalingStore.Pending]
    /// The other node took over a message.
    func markDelivered(sender: String, id: String, node: String) async throws(SignalingError)
    /// Forgets delivered messages older than `age` seconds and what expired.
    func prune(olderThan age: Double, now: Date) async throws(SignalingError)
    /// Closes the store; safe to call more than once.
    func close() async
}

/// The defaults the hub relies on (protocol requirements take none).
extension SignalingStorage {
    public func join(room: String, member: String) async throws(SignalingError) -> Bool {
        try await join(room: room, member: member, rule: .open)
    }

    public func enqueue(sender: String, id: String, recipients: [String], frame: String) async throws(SignalingError) -> [String] {
        try await enqueue(sender: sender, id: id, recipients: recipients, frame: frame, room: nil)
    }

    public func pending(for recipient: String) async throws(SignalingError) -> [SignalingStore.Pending] {
        try await pending(for: recipient, limit: 1000)
    }

    public func pending(forNode node: String) async throws(SignalingError) -> [SignalingStore.Pending] {
        try await pending(forNode: node, limit: 10_000)
    }

    public func prune(olderThan age: Double) async throws(SignalingError) {
        try await prune(olderThan: age, now: Date())
    }

    public func history(of room: String, before: Int?, limit: Int) async throws(SignalingError) -> (entries: [HistoryEntry], more: Bool) {
        try await history(of: room, before: before, limit: limit, maxBytes: HistoryBody.maxPageBytes, now: Date())
    }
}

/// SQLite: the embedded store of a single node.
extension SignalingStore: SignalingStorage {}
