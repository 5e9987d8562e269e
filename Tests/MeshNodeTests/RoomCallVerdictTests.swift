import Testing
@testable import MeshNode

/// How a CLI participant judges its room call (docs/rooms.md "Failure").
@Suite struct RoomCallVerdictTests {
    typealias Outcome = RoomCallVerdict.Outcome

    @Test("a pairwise call hung up for the forwarder before its first keyframe does not fail a forwarded call that decoded everyone")
    func movedBeforeKeyframe() {
        let outcomes = [
            Outcome(remote: "alice@west", forwarded: false, endReason: RoomCallVerdict.movedToForwarder, ok: false),
            Outcome(remote: "forwarder", forwarded: true, endReason: "hung up", ok: true),
        ]
        #expect(RoomCallVerdict.ok(outcomes))
    }

    @Test("the forwarder's call decides: it failing fails the run, whatever the pairwise calls did")
    func forwarderFails() {
        let outcomes = [
            Outcome(remote: "alice", forwarded: false, endReason: RoomCallVerdict.movedToForwarder, ok: true),
            Outcome(remote: "forwarder", forwarded: true, endReason: "failed", ok: false),
        ]
        #expect(!RoomCallVerdict.ok(outcomes))
    }

    @Test("without a forwarder, each participant's last pairwise call counts, whatever its end reason")
    func pairwiseOnly() {
        let replaced = [
            Outcome(remote: "alice", forwarded: false, endReason: "busy", ok: false),
            Outcome(remote: "alice", forwarded: false, endReason: "hung up", ok: true),
            Outcome(remote: "bob", forwarded: false, endReason: "hung up", ok: true),
        ]
        #expect(RoomCallVerdict.ok(replaced))
        let failed = [
            Outcome(remote: "alice", forwarded: false, endReason: "hung up", ok: true),
            Outcome(remote: "bob", forwarded: false, endReason: "ICE failed", ok: false),
        ]
        #expect(!RoomCallVerdict.ok(failed))
        // The move's reason with no forwarder call at all is judged like any other end.
        #expect(!RoomCallVerdict.ok([Outcome(remote: "bob", forwarded: false, endReason: RoomCallVerdict.movedToForwarder, ok: false)]))
    }

    @Test("pairwise calls before the forwarder's call are not judged, whoever ended them; one after it (back to peer to peer) is")
    func endedByEitherSide() {
        // CI: bob hung up for the move, so alice's side ended as hung up by the peer.
        let peerEnded = [
            Outcome(remote: "bob@east", forwarded: false, endReason: "the peer hung up", ok: false),
            Outcome(remote: "forwarder@east", forwarded: true, endReason: "hung up", ok: true),
        ]
        #expect(RoomCallVerdict.ok(peerEnded))
        let backToPairs = [
            Outcome(remote: "carol", forwarded: false, endReason: RoomCallVerdict.movedToForwarder, ok: false),
            Outcome(remote: "forwarder", forwarded: true, endReason: "the room call moved back", ok: true),
            Outcome(remote: "carol", forwarded: false, endReason: "ICE failed", ok: false),
        ]
        #expect(!RoomCallVerdict.ok(backToPairs))
        #expect(!RoomCallVerdict.ok([]))
    }
}
