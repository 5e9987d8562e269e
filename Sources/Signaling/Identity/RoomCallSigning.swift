import Foundation

/// End-to-end signatures of `room-call` requests (docs/protocol.md "Room calls"). As for call
/// setup (``CallSigning``), the signed bytes are a context line and the payload's exact JSON
/// text; the context differs, so a signed call-setup message cannot pass as a room-call request
/// or the other way round.
public enum RoomCallSigning {
    static let context = "meshnode.v1 room-call\n"

    /// Signs `payload` with `identity`.
    public static func sign(_ payload: RoomCallPayload, with identity: Identity) -> SignedBody {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let text = String(decoding: (try? encoder.encode(payload)) ?? Data(), as: UTF8.self)
        return SignedBody(payload: text, key: identity.publicKeyBase64, sig: identity.sign(text: context + text))
    }

    /// Verifies a request against `key` (the sender's key as bound at the node, or as a member
    /// pinned it) and checks that the signed payload matches the envelope: the same sender and
    /// room. Returns the payload.
    public static func verify(_ body: SignedBody, from: String, room: String, key: String,
                              of id: String? = nil) throws(SignalingError) -> RoomCallPayload {
        try verify(body, from: from, room: { $0 == room }, roomText: room, key: key, of: id)
    }

    /// Verifies a request signed at another node: its signer wrote the room relative to its own
    /// node (`#ops@east` at west, `#ops` at east), so `room` decides whether the signed room is
    /// the one meant (see ``roomName(_:)``); `roomText` is for the error.
    public static func verify(_ body: SignedBody, from: String, room: (String) -> Bool, roomText: String, key: String,
                              of id: String? = nil) throws(SignalingError) -> RoomCallPayload {
        let payload = try body.open(as: RoomCallPayload.self, context: context, key: key, what: "the room-call request from \(from)",
                                    from: from, shape: "a room-call payload (action start, join or leave; from; room; call; ts)", of: id)
        guard Address.bareName(payload.from) == Address.bareName(from), room(payload.room) else {
            throw SignalingError(.badSignature, "the signed payload says \(payload.action.rawValue) from \(payload.from) in \(payload.room), the envelope from \(from) to \(roomText)", of: id)
        }
        // Printed and logged by every member: printable ASCII only (as a call id).
        guard (1...64).contains(payload.call.utf8.count), payload.call.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw SignalingError(.badField, "the room call id must be 1 to 64 printable ASCII characters without spaces", of: id)
        }
        return payload
    }

    /// The room's name without its node: `#ops` for `#ops` and `#ops@east:8443`.
    public static func roomName(_ room: String) -> String {
        Address.bareName(room)
    }
}
