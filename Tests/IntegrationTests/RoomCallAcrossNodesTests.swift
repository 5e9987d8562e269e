import Foundation
import Testing
import TestSupport

/// Issue 16, a room call in a room of another node (docs/rooms.md "Room calls in a room of
/// another node"): `#ops` is hosted by east; bob at east waits in it (`join --accept auto`),
/// alice at west starts its call through west's link (`call '#ops@east'`), bob is rung and
/// joins, and carol at west joins the running call. Each runs one pairwise call per other
/// participant — alice–carol within west, the others across the link — and decodes the other
/// two's test pattern.
@Suite(.serialized, .timeLimit(.minutes(3))) struct RoomCallAcrossNodesTests {
    @Test("CLI peers at two linked nodes in one room call: each decodes the other two")
    func threePeersAtTwoNodes() async throws {
        let nodes = try await LinkedNodes.start()
        defer { nodes.stop() }
        let (east, west, eastAddress, westAddress) = (nodes.east, nodes.west, nodes.eastAddress, nodes.westAddress)
        let peers = try CallPeers("room-call-links")
        let sources = ["--source", "pattern:320x180@15", "--source", "tone"]
        let room = "#ops@\(eastAddress)"
        let bob = try await peers.roomMember("bob", room: "#ops", node: east.signalingURL, extra: sources)
        defer { bob.stop() }
        _ = try await peers.options("alice")
        _ = try await peers.options("carol")
        let alice = try peers.startCall("alice", to: room, node: west.signalingURL, duration: 5, extra: sources)
        defer { alice.stop() }
        // The start went from west to east; east rang bob, who joined and called alice across the link.
        try await bob.waitForOutput(#""change":"started""#)
        try await bob.waitForOutput(#""member":"alice@\#(westAddress)""#)
        let carol = try peers.startCall("carol", to: room, node: west.signalingURL, duration: 5, extra: sources)
        defer { carol.stop() }
        let limit = TestDeadline.event * 4 + .seconds(10)
        let aliceExit = await alice.waitForExit(timeout: limit)
        let carolExit = await carol.waitForExit(timeout: limit)
        #expect(aliceExit == 0, "alice: \(alice.output.suffix(3000))")
        #expect(carolExit == 0, "carol: \(carol.output.suffix(3000))")
        try await bob.waitForOutput(timeout: TestDeadline.event * 2, describe: "two call-ended reports") {
            $0.components(separatedBy: #""event":"call-ended""#).count == 3
        }
        // Each writes the others as its node does: peers of its own node bare, others qualified.
        let expected = ["alice": Set(["bob@\(eastAddress)", "carol"]), "carol": Set(["bob@\(eastAddress)", "alice"]),
                        "bob": Set(["alice@\(westAddress)", "carol@\(westAddress)"])]
        let byParty = ["alice": try RoomCallCLITests.reports(in: alice.output), "carol": try RoomCallCLITests.reports(in: carol.output),
                       "bob": try RoomCallCLITests.reports(in: bob.output)]
        for (me, reports) in byParty {
            #expect(Set(reports.keys) == expected[me], "\(me) has pairwise calls with \(reports.keys.sorted())")
            for (other, report) in reports { try RoomCallCLITests.expectDecoded(report, "\(me) ← \(other)") }
        }
        let figures = byParty.sorted { $0.key < $1.key }.flatMap { me, reports in
            reports.sorted { $0.key < $1.key }.map { other, report -> String in
                let video = (report["streams"] as? [[String: Any]])?.first { $0["kind"] as? String == "video" } ?? [:]
                return "\(me)←\(other) frames \(video["firstPatternFrame"] ?? "-")…\(video["lastPatternFrame"] ?? "-")"
            }
        }
        print("figure: room call across two nodes, pattern frames decoded per pair: \(figures.joined(separator: ", "))")
    }
}
