import Foundation
import Testing
@testable import Signaling

/// A participant takes a forwarder assignment only under its node's pinned key (docs/protocol.md
/// "Room calls", *Forwarded mode*). The test is the node, or someone posing as it, that lies.
@Suite struct ForwarderAssignmentTests {
    let node = Identity.generate()
    let bob = SignalingClient(url: "ws://127.0.0.1:1/ws", name: "bob", identity: .generate())

    func state(_ forwarder: SignedBody?) -> RoomCallStateBody {
        let alice = Identity.generate()
        let start = RoomCallSigning.sign(RoomCallPayload(action: .start, from: "alice", room: "#ops", call: "rc-1", ts: Date().timeIntervalSince1970), with: alice)
        return RoomCallStateBody(room: "#ops", call: "rc-1", kind: .video, event: .joined, member: "alice", participants: [start],
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
}
