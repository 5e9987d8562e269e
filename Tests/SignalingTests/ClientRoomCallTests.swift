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

    /// A room of another node: signers wrote their names and the room relative to their own
    /// nodes; the state's `addresses` say who each one is as bob writes it. A node that gives a
    /// participant another address (a name of its own node for a peer of another, or the other
    /// way round) only makes it fail the pin bob holds for that address.
    @Test func participantsOfAnotherNodeAreCheckedByTheirAddress() async throws {
        let (alice, carol, dave) = (Identity.generate(), Identity.generate(), Identity.generate())
        let west = "198.51.100.5:8443"
        // bob has met dave (a peer of his own node) and alice@west before.
        _ = try bob.pins.check(bob.pinAddress(of: "dave"), key: dave.publicKeyBase64)
        _ = try bob.pins.check("alice@\(west)", key: alice.publicKeyBase64)
        // bob is at east, the host: the room is #ops; alice and carol at west signed #ops@east.
        let body = RoomCallStateBody(room: "#ops", call: "rc-1", kind: .video, event: .joined, member: "carol@\(west)", participants: [
            Self.signed(.start, "alice", alice, room: "#ops@east:8443"),
            Self.signed(.join, "carol", carol, room: "#ops@east:8443"),
            Self.signed(.join, "dave", alice, room: "#ops@east:8443"),   // alice's key as dave here: his pin says otherwise
            Self.signed(.join, "alice", alice, room: "#other@east:8443"), // another room
            Self.signed(.join, "alice", alice, room: "#ops@east:8443"),  // alice's join listed as dave@west's
        ], limit: 4, addresses: ["alice@\(west)", "carol@\(west)", "dave", "alice@\(west)", "dave@\(west)"])
        let state = await bob.verifyRoomCallState(body)
        #expect(state.participants.map(\.name) == ["alice@\(west)", "carol@\(west)"])
        #expect(state.refused == 3)
        #expect(bob.pins.key(for: "carol@\(west)") == carol.publicKeyBase64)
        // A request signed as alice by another key (carol's), listed under alice@west: her pin refuses it.
        let swapped = RoomCallStateBody(room: "#ops", call: "rc-1", kind: .video, event: .joined, member: "x", participants: [
            Self.signed(.start, "alice", carol, room: "#ops@east:8443"),
        ], limit: 4, addresses: ["alice@\(west)"])
        #expect(await bob.verifyRoomCallState(swapped).participants.isEmpty, "carol's key under alice@west's name fails alice's pin")
    }
}
