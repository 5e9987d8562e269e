/// Settings of a node's signaling hub.
public struct HubConfiguration: Sendable {
    /// Clients ping at least this often; a connection silent for two intervals is dropped.
    public var heartbeat: Duration = SignalingProtocol.defaultHeartbeat
    /// A connection that has neither logged in nor linked by then is closed (`login-timeout`).
    public var loginTimeout: Duration = .seconds(30)
    /// Frames per second per connection on average, and the burst allowed.
    public var rate: Double = 50
    public var burst: Double = 200
    /// Largest chat text in bytes.
    public var maxChatBytes = 16 * 1024
    /// Default and maximum ringing time of a call before the node sends `timeout`.
    public var defaultRing = 30
    public var maxRing = 120
    /// Delivered messages are kept this long (seconds) so that late resends stay deduplicated.
    public var retention: Double = 7 * 86_400
    /// This node's address (`host:port` of its HTTP endpoint) and key, for node links
    /// (docs/protocol.md "Node links"). Without them the node neither takes nor makes links.
    public var nodeAddress: String?
    public var nodeIdentity: Identity?
    /// A closed mesh (`--mesh-key`): the only node keys (base64) whose links and records this
    /// node takes, besides its own. Nil: any key (an open mesh).
    public var meshKeys: Set<String>?
    /// The `host:port` forms (`LoginBody.authority`) a login may name as the node it dialled:
    /// the node's own addresses. A login signed for any other is refused (`bad-signature`).
    public var authorities: Set<String> = []
    /// The rule of a room whose creator names none.
    public var defaultRoomRule: RoomRule = .open

    /// Room calls (docs/rooms.md): the most participants of a peer-to-peer room call
    /// (`--room-call-mesh-limit`), the room calls the node keeps at once, and how long a
    /// participant with no device online keeps its place (a reconnect within it rejoins).
    public var roomCallMeshLimit = 4
    public var maxRoomCalls = 1024
    public var roomCallGrace: Duration = .seconds(30)
    /// Whether this node runs a forwarder (`--forwarder`, docs/rooms.md "Two modes"): a join past
    /// ``roomCallMeshLimit`` then makes the call forwarded, up to ``forwardedCallLimit``.
    public var forwarder = false
    public var forwardedCallLimit = ForwarderAssignment.maxParticipants
    /// Node keys whose forwarder sessions this node assigns calls to (`--forwarder-key`,
    /// docs/protocol.md "Room calls", *Forwarded mode* item 7), besides proven mesh nodes whose
    /// record says `relay`.
    public var forwarderKeys: Set<String> = []
    /// How often the node pings each forwarder session, and after how long without an answer
    /// it takes it for gone (1 s and 3 s: detection, reassignment and ICE fit in 5 s).
    public var forwarderPing: Duration = .seconds(1)
    public var forwarderSilence: Duration = .seconds(3)

    /// Presence subscriptions one node link may hold (for the peers of its node).
    public var maxLinkSubscriptions = 10_000

    public init() {}
}
