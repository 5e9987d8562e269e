import Testing
@testable import MeshNode

/// How a CLI participant judges its room call (docs/rooms.md "Failure").
@Suite struct RoomCallVerdictTests {
    typealias Outcome = RoomCallVerdict.Outcome

    @Test("a pairwise call cut short by the move before its first keyframe does not fail a forwarded call that decoded everyone")
    func movedBeforeKeyframe() {
        let outcomes = [
            Outcome(remote: "alice@west", forwarded: false, ok: false),
            Outcome(remote: "forwarder", forwarded: true, ok: true),
        ]
        #expect(RoomCallVerdict.ok(outcomes))
    }

    @Test("the forwarder's call decides: it failing fails the run, whatever the pairwise calls did")
    func forwarderFails() {
        let outcomes = [
            Outcome(remote: "alice", forwarded: false, ok: true),
            Outcome(remote: "forwarder", forwarded: true, ok: false),
        ]
        #expect(!RoomCallVerdict.ok(outcomes))
    }

    @Test("without a forwarder, each participant's last pairwise call counts")
    func pairwiseOnly() {
        let replaced = [
            Outcome(remote: "alice", forwarded: false, ok: false),
            Outcome(remote: "alice", forwarded: false, ok: true),
            Outcome(remote: "bob", forwarded: false, ok: true),
        ]
        #expect(RoomCallVerdict.ok(replaced))
        let failed = [
            Outcome(remote: "alice", forwarded: false, ok: true),
            Outcome(remote: "bob", forwarded: false, ok: false),
        ]
        #expect(!RoomCallVerdict.ok(failed))
        // A failed pairwise call with no forwarder call at all fails the run.
        #expect(!RoomCallVerdict.ok([Outcome(remote: "bob", forwarded: false, ok: false)]))
    }

    @Test("pairwise calls before the forwarder's call are not judged, whichever side ended them; one after it (back to peer to peer) is")
    func endedByEitherSide() {
        // CI: bob hung up for the move, so alice's call to him ended from his side.
        let peerEnded = [
            Outcome(remote: "bob@east", forwarded: false, ok: false),
            Outcome(remote: "forwarder@east", forwarded: true, ok: true),
        ]
        #expect(RoomCallVerdict.ok(peerEnded))
        let backToPairs = [
            Outcome(remote: "carol", forwarded: false, ok: false),
            Outcome(remote: "forwarder", forwarded: true, ok: true),
            Outcome(remote: "carol", forwarded: false, ok: false),
        ]
        #expect(!RoomCallVerdict.ok(backToPairs))
        #expect(!RoomCallVerdict.ok([]))
    }
}
