import Foundation

/// Signatures of forwarder assignments (docs/protocol.md "Room calls", *Forwarded mode*): the
/// room's node signs with its node key, under a context line of its own so that no other signed
/// text (a login, a link, a call setup) can pass for an assignment.
public enum ForwarderSigning {
    static let context = "meshnode.v1 forwarder\n"

    /// Signs `assignment` with the node's `identity`.
    public static func sign(_ assignment: ForwarderAssignment, with identity: Identity) -> SignedBody {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let text = String(decoding: (try? encoder.encode(assignment)) ?? Data(), as: UTF8.self)
        return SignedBody(payload: text, key: identity.publicKeyBase64, sig: identity.sign(text: context + text))
    }

    /// Verifies an assignment: signed by `nodeKey` (the key pinned for the room's node), for
    /// `room` and `call`, not expired at `now` (with the ±`window` of call setup) and not longer
    /// lived than ``ForwarderAssignment/maxLifetime``.
    /// - Throws: ``SignalingError`` `bad-signature` for another key or a bad signature,
    ///   `bad-field` for another room or call, `stale` for an expired one.
    public static func verify(_ body: SignedBody, nodeKey: String, room: String, call: String, now: Double,
                              window: Double = 120) throws(SignalingError) -> ForwarderAssignment {
        guard body.key == nodeKey else {
            throw SignalingError(.badSignature, "the forwarder assignment is signed by \(body.key.prefix(12))…, not by the key pinned for this node (\(nodeKey.prefix(12))…)")
        }
        let assignment = try body.open(as: ForwarderAssignment.self, context: context, key: nodeKey, what: "the forwarder assignment",
                                       from: "@node", shape: "a forwarder assignment (room, call, forwarder, key, ts, expires)", of: nil)
        // A room of another node (`#ops@east:8443`) is vouched for by this client's node, which
        // writes the room in full: an assignment for the same name at another host is not this one.
        let host = room.hasPrefix("#") ? Address.parse(String(room.dropFirst()))?.node : nil
        let sameRoom = host == nil ? RoomCallSigning.roomName(assignment.room) == RoomCallSigning.roomName(room) : assignment.room == room
        guard sameRoom, assignment.call == call else {
            throw SignalingError(.badField, "the forwarder assignment is for \(assignment.call.prefix(64)) in \(assignment.room.prefix(40)), not \(call.prefix(64)) in \(room.prefix(40))")
        }
        guard assignment.ts.isFinite, assignment.expires.isFinite, assignment.expires - assignment.ts <= ForwarderAssignment.maxLifetime,
              now <= assignment.expires + window, now >= assignment.ts - window else {
            throw SignalingError(.stale, "the forwarder assignment was signed at \(assignment.ts) for until \(assignment.expires); it is \(now) here")
        }
        guard Identity.decodeKey(assignment.key) != nil, !assignment.forwarder.isEmpty, assignment.forwarder.utf8.count <= 200 else {
            throw SignalingError(.badField, "the forwarder assignment names no forwarder or no valid key")
        }
        // The forwarder is a session at the room's node: a bare forwarder name for a room here,
        // `forwarder…@host` for a room at `host` (so no assignment sends a room's media to a
        // peer somewhere else).
        let forwarder = Address.parse(assignment.forwarder)
        guard let forwarder, ForwarderAssignment.isForwarderName(forwarder.name), forwarder.node == host,
              host == nil || assignment.host == host else {
            throw SignalingError(.badField, "the forwarder assignment names \(assignment.forwarder.prefix(80)), not a forwarder at the room's node \(host ?? "here")")
        }
        return assignment
    }

    /// The member's node's part for a room of another node (docs/rooms.md "Forwarded calls for
    /// members of other nodes"): verifies the host's own assignment under `hostKey` — the key
    /// the link to `host` proved, never a key the push names — for the host's `room` and `call`,
    /// and signs a new one with this node's `identity` (the key its clients pinned): the room
    /// and the forwarder written as this node's clients write them (`#ops@host`,
    /// `forwarder@host`), the same forwarder key, expiring no later than the host's.
    /// - Throws: what ``verify(_:nodeKey:room:call:now:window:)`` throws, and `bad-field` when
    ///   the host names a forwarder that is not one of its own sessions.
    public static func vouch(_ body: SignedBody, hostKey: String, host: String, room: String, call: String, now: Double,
                             with identity: Identity) throws(SignalingError) -> SignedBody {
        let theirs = try verify(body, nodeKey: hostKey, room: room, call: call, now: now)
        guard !theirs.forwarder.contains("@") else {
            throw SignalingError(.badField, "the forwarder assignment of \(host) names \(theirs.forwarder.prefix(80)), not a forwarder session of its own")
        }
        let ours = ForwarderAssignment(room: "\(RoomCallSigning.roomName(room))@\(host)", call: call, forwarder: "\(theirs.forwarder)@\(host)",
                                       key: theirs.key, ts: now, expires: min(theirs.expires, now + ForwarderAssignment.maxLifetime),
                                       host: host, hostKey: hostKey)
        return sign(ours, with: identity)
    }
}
