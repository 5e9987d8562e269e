import Foundation
import Testing
@testable import Signaling

/// A participant takes a forwarder assignment only under its node's pinned key (docs/protocol.md
/// "Room calls", *Forwarded mode*). The test is the node, or someone posing as it, that lies.
@Suite struct ForwarderAssignmentTests {
    let node = Identity.generate()
    let bob = SignalingClient(url: "ws://127.0.0.1:1/ws", name: "bob", identity: .generate())

    func state(_ forwarder: SignedBody?, room: String = "#ops") -> RoomCallStateBody {
        let alice = Identity.generate()
        let start = RoomCallSigning.sign(RoomCallPayload(action: .start, from: "alice", room: "#ops", call: "rc-1", ts: Date().timeIntervalSince1970), with: alice)
        return RoomCallStateBody(room: room, call: "rc-1", kind: .video, event: .joined, member: "alice", participants: [start],
                                 limit: 20, forwarder: forwarder)
    }

    func assignment(signedBy signer: Identity, forwarderKey: String? = nil, room: String = "#ops", call: String = "rc-1",
                    ts: Double = Date().timeIntervalSince1970, lifetime: Double = 600) -> SignedBody {
        ForwarderSigning.sign(ForwarderAssignment(room: room, call: call, forwarder: "forwarder", key: forwarderKey ?? signer.publicKeyBase64,
                                                  ts: ts, expires: ts + lifetime), with: signer)
    }

    @Test func theNodesOwnAssignmentIsTaken() async throws {
        await bob.nodeKeyWelcomed(node.publicKeyBase64)
        let state = await bob.verifyRoomCallState(state(assignment(signedBy: node)))
        #expect(state.forwarder == RoomCallForwarder(address: "forwarder", key: node.publicKeyBase64))
        #expect(state.forwarderRefusal == nil)
    }

    @Test func aForgedAssignmentIsRefused() async throws {
        await bob.nodeKeyWelcomed(node.publicKeyBase64)
        let mallory = Identity.generate()
        // Signed by another key (naming its own forwarder key), even one claiming the node's key.
        var claimed = assignment(signedBy: mallory)
        claimed.key = node.publicKeyBase64
        var altered = assignment(signedBy: node)
        altered.payload = altered.payload.replacingOccurrences(of: node.publicKeyBase64, with: mallory.publicKeyBase64)
        let now = Date().timeIntervalSince1970
        let cases: [(SignedBody, SignalingError.Code)] = [
            (assignment(signedBy: mallory), .badSignature),
            (claimed, .badSignature),
            (altered, .badSignature),
            (assignment(signedBy: node, call: "rc-0"), .badField),                            // another call
            (assignment(signedBy: node, room: "#x"), .badField),                               // another room
            (assignment(signedBy: node, ts: now - 4000, lifetime: 3600), .stale),              // expired
            (assignment(signedBy: node, ts: now, lifetime: 86_400), .stale),                   // too long lived
        ]
        for (signed, code) in cases {
            let state = await bob.verifyRoomCallState(state(signed))
            #expect(state.forwarder == nil)
            #expect(state.forwarderRefusal != nil)
            #expect(throws: SignalingError.self) { try ForwarderSigning.verify(signed, nodeKey: node.publicKeyBase64, room: "#ops", call: "rc-1", now: now) }
            do {
                _ = try ForwarderSigning.verify(signed, nodeKey: node.publicKeyBase64, room: "#ops", call: "rc-1", now: now)
            } catch {
                #expect(error.code == code, "\(error)")
            }
        }
    }

    /// A client that has pinned its node's key refuses a node (or a server posing as it) that
    /// logs it in with another key: its assignments are then checked against the old pin.
    @Test func aChangedNodeKeyIsNotPinned() async throws {
        await bob.nodeKeyWelcomed(node.publicKeyBase64)
        let impostor = Identity.generate()
        await bob.nodeKeyWelcomed(impostor.publicKeyBase64)
        let state = await bob.verifyRoomCallState(state(assignment(signedBy: impostor)))
        #expect(state.forwarder == nil)
        #expect(bob.pins.key(for: bob.nodePinAddress) == node.publicKeyBase64)
    }

    /// A forwarder on another node (item 7): the node's assignment naming that forwarder and its
    /// key is taken; the forwarding node cannot assign itself (or move a call to itself) by
    /// signing an assignment of its own.
    @Test func aForwardingNodeIsTakenOnlyWhenTheNodeAssignsIt() async throws {
        await bob.nodeKeyWelcomed(node.publicKeyBase64)
        let far = Identity.generate()
        let name = try #require(ForwarderAssignment.remoteName(forKey: far.publicKeyBase64))
        let ts = Date().timeIntervalSince1970
        let payload = ForwarderAssignment(room: "#ops", call: "rc-1", forwarder: name, key: far.publicKeyBase64, ts: ts, expires: ts + 600)
        let taken = await bob.verifyRoomCallState(state(ForwarderSigning.sign(payload, with: node)))
        #expect(taken.forwarder == RoomCallForwarder(address: name, key: far.publicKeyBase64))
        let selfAssigned = await bob.verifyRoomCallState(state(ForwarderSigning.sign(payload, with: far)))
        #expect(selfAssigned.forwarder == nil)
        #expect(selfAssigned.forwarderRefusal?.contains("not by the key pinned for this node") == true)
    }

    @Test func noNodeKeyNoForwarder() async throws {
        let state = await bob.verifyRoomCallState(state(assignment(signedBy: node)))
        #expect(state.forwarder == nil)
        #expect(state.forwarderRefusal?.contains("nodeKey") == true)
    }

    /// A room of another node (docs/rooms.md "Forwarded calls for members of other nodes"): the
    /// client takes only the assignment its own node vouched for, naming the room in full and a
    /// forwarder at that room's node. The host's own assignment (a key bob never pinned), one
    /// vouched by any other key, or one vouched for another host's room is refused.
    @Test func aRoomOfAnotherNodeIsTakenOnlyAsVouchedByTheOwnNode() async throws {
        await bob.nodeKeyWelcomed(node.publicKeyBase64)
        let east = "198.51.100.20:8080"
        let room = "#ops@\(east)"
        let host = Identity.generate()
        let forwarderKey = Identity.generate().publicKeyBase64
        let now = Date().timeIntervalSince1970
        let theirs = ForwarderSigning.sign(ForwarderAssignment(room: "#ops", call: "rc-1", forwarder: "forwarder", key: forwarderKey,
                                                               ts: now, expires: now + 600), with: host)
        let vouched = try ForwarderSigning.vouch(theirs, hostKey: host.publicKeyBase64, host: east, room: "#ops", call: "rc-1", now: now, with: node)
        let taken = await bob.verifyRoomCallState(state(vouched, room: room))
        #expect(taken.forwarder == RoomCallForwarder(address: "forwarder@\(east)", key: forwarderKey))
        #expect(taken.forwarderRefusal == nil)

        func vouchedPayload(_ change: (inout ForwarderAssignment) -> Void) -> SignedBody {
            var payload = ForwarderAssignment(room: room, call: "rc-1", forwarder: "forwarder@\(east)", key: forwarderKey, ts: now,
                                              expires: now + 600, host: east, hostKey: host.publicKeyBase64)
            change(&payload)
            return ForwarderSigning.sign(payload, with: node)
        }
        let stranger = Identity.generate()
        let vouchedByStranger = try ForwarderSigning.vouch(theirs, hostKey: host.publicKeyBase64, host: east, room: "#ops",
                                                           call: "rc-1", now: now, with: stranger)
        let refusals: [(String, SignedBody)] = [
            ("the host's own, unvouched", theirs),
            ("vouched by another node's key", vouchedByStranger),
            ("vouched for that name at another host", vouchedPayload { $0.room = "#ops@203.0.113.5:443" }),
            ("vouched for a room of bob's own node", vouchedPayload { $0.room = "#ops" }),
            ("a forwarder at another node", vouchedPayload { $0.forwarder = "forwarder@203.0.113.5:443" }),
            ("a peer as forwarder", vouchedPayload { $0.forwarder = "carol@\(east)" }),
            ("naming another host", vouchedPayload { $0.host = "203.0.113.5:443" }),
        ]
        for (what, signed) in refusals {
            let state = await bob.verifyRoomCallState(state(signed, room: room))
            #expect(state.forwarder == nil, "\(what)")
            #expect(state.forwarderRefusal != nil, "\(what)")
        }
        // And the node refuses to vouch for what its link's key did not sign.
        #expect(throws: SignalingError.self) {
            try ForwarderSigning.vouch(theirs, hostKey: stranger.publicKeyBase64, host: east, room: "#ops", call: "rc-1", now: now, with: node)
        }
    }
}
