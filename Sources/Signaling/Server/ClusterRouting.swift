/// What the hub needs from the other members of its cluster (docs/cluster.md): several
/// `meshnode serve` processes act as one node, sharing its store; a message for a name online
/// at another member is handed to that member, and presence changes are told to all.
///
/// Nothing here is durable: chat is in the shared store before the hub acknowledges it, and a
/// frame lost with a member that died is delivered from the store when its recipient logs in
/// again (at another member).
public protocol ClusterRouting: Sendable {
    /// This member's name, unique in the cluster.
    var member: String { get }
    /// Hands `text` (one encoded frame) to `name`'s connections at `member`; ordered per member.
    func deliver(text: String, to name: String, at member: String)
    /// Tells every member that `name` is online here (its first connection) or offline (its last).
    func presence(name: String, online: Bool, key: String?)
    /// The member hosting the call of `room` (the shared `room_calls`), nil when none does.
    /// With `claim` (a start of call `call`), a room no member hosts is claimed for this one,
    /// which is then returned; two members claiming at once are settled by the table's key.
    func roomCallHost(room: String, call: String, claim: Bool) async throws(SignalingError) -> String?
    /// The member hosting the call of each room `name` is a member of that has a call now
    /// (room → member; a name is in at most `memberRooms` rooms): where a participant that
    /// logged in here after its own member died has its forwarded call.
    func roomCallHosts(ofRoomMember name: String) async throws(SignalingError) -> [String: String]
}

/// A name's connections at another member: what the hub writes goes to that member.
struct ClusterOutput: ConnectionOutput {
    let routing: any ClusterRouting
    let name: String
    let member: String

    func write(text: String) {
        routing.deliver(text: text, to: name, at: member)
    }

    /// The hub never closes another member's connections.
    func close() {}
}
