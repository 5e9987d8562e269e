import Foundation
import Testing
@testable import Signaling

/// What a client takes of a room call's participant list, with no node involved: the test is
/// a node that lies (docs/protocol.md "Room calls": the node can leave a participant out, not
/// add one).
@Suite struct ClientRoomCallTests {
    let bob = SignalingClient(url: "ws://127.0.0.1:1/ws", name: "bob", identity: .generate())

    static func signed(_ action: RoomCallAction, _ name: String, _ key: Identity, room: String = "#ops", call: String = "rc-1") -> SignedBody {
        RoomCallSigning.sign(RoomCallPayload(action: action, from: name, room: room, call: call, ts: Date().timeIntervalSince1970), with: key)
    }

    @Test func aNodeCannotAddAParticipant() async throws {
        let (alice, carol, dave, mallory) = (Identity.generate(), Identity.generate(), Identity.generate(), Identity.generate())
        // bob has met dave before: his key is pinned.
        _ = try bob.pins.check(bob.pinAddress(of: "dave"), key: dave.publicKeyBase64)
        var altered = Self.signed(.join, "carol", carol)
        altered.payload = altered.payload.replacingOccurrences(of: "carol", with: "erin")
        var stolenDevice = Self.signed(.join, "frank", mallory)
        stolenDevice.owner = Identity.generate().publicKeyBase64
        stolenDevice.endorsement = "bm90IGFuIGVuZG9yc2VtZW50"
        let body = RoomCallStateBody(room: "#ops", call: "rc-1", kind: .video, event: .joined, member: "carol", participants: [
            Self.signed(.start, "alice", alice),
            Self.signed(.join, "carol", carol),
            Self.signed(.join, "dave", mallory),                  // dave's name, another key than his pin
            Self.signed(.join, "mallory", mallory, call: "rc-0"), // a join of another call
            Self.signed(.join, "mallory", mallory, room: "#x"),   // of another room
            Self.signed(.leave, "mallory", mallory),              // a leave is no join
            altered,                                              // altered after signing
            stolenDevice,                                         // a device key without its owner's endorsement
            Self.signed(.join, "carol", carol),                   // twice
        ], limit: 4)
        let state = await bob.verifyRoomCallState(body)
        #expect(state.participants.map(\.name) == ["alice", "carol"])
        #expect(state.participants.map(\.key) == [alice.publicKeyBase64, carol.publicKeyBase64])
        #expect(state.refused == 7)
        // The first sight pinned alice and carol, as call setup would.
        #expect(bob.pins.key(for: bob.pinAddress(of: "carol")) == carol.publicKeyBase64)
    }
}
