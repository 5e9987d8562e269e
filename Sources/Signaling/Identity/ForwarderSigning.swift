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
        guard RoomCallSigning.roomName(assignment.room) == RoomCallSigning.roomName(room), assignment.call == call else {
            throw SignalingError(.badField, "the forwarder assignment is for \(assignment.call.prefix(64)) in \(assignment.room.prefix(40)), not \(call.prefix(64)) in \(room.prefix(40))")
        }
        guard assignment.ts.isFinite, assignment.expires.isFinite, assignment.expires - assignment.ts <= ForwarderAssignment.maxLifetime,
              now <= assignment.expires + window, now >= assignment.ts - window else {
            throw SignalingError(.stale, "the forwarder assignment was signed at \(assignment.ts) for until \(assignment.expires); it is \(now) here")
        }
        guard Identity.decodeKey(assignment.key) != nil, !assignment.forwarder.isEmpty, assignment.forwarder.utf8.count <= 200 else {
            throw SignalingError(.badField, "the forwarder assignment names no forwarder or no valid key")
        }
        return assignment
    }
}
