import Foundation
import Testing
import TestSupport

/// Issue 16, peer-to-peer room calls from the CLI (docs/rooms.md): three `meshnode` processes in
/// one room call — two `meshnode call '#family'` (the first starts it, the second joins the
/// running call) and one `meshnode join --accept auto --room '#family'` (rung, joins) — each
/// runs one pairwise call per other participant and decodes the other two's test pattern.
@Suite(.serialized, .timeLimit(.minutes(3))) struct RoomCallCLITests {
    /// The reports (`--json`) in a process's output, by the party of each pairwise call.
    static func reports(in output: String) throws -> [String: [String: Any]] {
        var byPeer: [String: [String: Any]] = [:]
        for line in output.split(separator: "\n") where line.hasPrefix("{") && line.contains("\"streams\"") {
            guard let report = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let to = report["to"] as? String else { continue }
            byPeer[to] = report
        }
        return byPeer
    }

    /// Media both ways, and the other's test-pattern frame numbers advanced in what was decoded.
    static func expectDecoded(_ report: [String: Any], _ what: String) throws {
        try CallPeers.expectMediaBothWays(report)
        let streams = try #require(report["streams"] as? [[String: Any]])
        let video = try #require(streams.first { $0["kind"] as? String == "video" }, "\(what): no video stream")
        let first = video["firstPatternFrame"] as? Int ?? -1
        let last = video["lastPatternFrame"] as? Int ?? -1
        #expect(first >= 0 && last > first && (video["patternFrames"] as? Int ?? 0) >= 2, "\(what): pattern frames \(first)…\(last)")
    }

    @Test("three CLI peers in a room call: each decodes the other two")
    func threePeersPeerToPeer() async throws {
        let node = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { node.stop() }
        let peers = try CallPeers("room-call")
        // Small pictures: three processes run six VP8 encoders on a shared machine.
        let sources = ["--source", "pattern:320x180@15", "--source", "tone"]
        let carol = try await peers.roomMember("carol", room: "#family", node: node.signalingURL, extra: sources)
        defer { carol.stop() }
        _ = try await peers.options("alice")
        _ = try await peers.options("bob")
        let alice = try peers.startCall("alice", to: "#family", node: node.signalingURL, duration: 5, extra: sources)
        defer { alice.stop() }
        // carol is rung and joins: alice's call with her is the first pair.
        try await carol.waitForOutput(#""change":"started""#)
        let bob = try peers.startCall("bob", to: "#family", node: node.signalingURL, duration: 5, extra: sources)
        defer { bob.stop() }
        let limit = TestDeadline.event * 4 + .seconds(10)
        let aliceExit = await alice.waitForExit(timeout: limit)
        let bobExit = await bob.waitForExit(timeout: limit)
        #expect(aliceExit == 0, "alice: \(alice.output.suffix(3000))")
        #expect(bobExit == 0, "bob: \(bob.output.suffix(3000))")
        // carol's pairwise calls end when alice and bob leave; join prints each one's report.
        try await carol.waitForOutput(timeout: TestDeadline.event * 2, describe: "two call-ended reports") {
            $0.components(separatedBy: #""event":"call-ended""#).count == 3
        }
        let byParty = ["alice": try Self.reports(in: alice.output), "bob": try Self.reports(in: bob.output),
                       "carol": try Self.reports(in: carol.output)]
        for (me, reports) in byParty {
            let others = Set(["alice", "bob", "carol"]).subtracting([me])
            #expect(Set(reports.keys) == others, "\(me) has pairwise calls with \(reports.keys.sorted())")
            for (other, report) in reports { try Self.expectDecoded(report, "\(me) ← \(other)") }
        }
        let figures = byParty.sorted { $0.key < $1.key }.flatMap { me, reports in
            reports.sorted { $0.key < $1.key }.map { other, report -> String in
                let video = (report["streams"] as? [[String: Any]])?.first { $0["kind"] as? String == "video" } ?? [:]
                return "\(me)←\(other) frames \(video["firstPatternFrame"] ?? "-")…\(video["lastPatternFrame"] ?? "-")"
            }
        }
        print("figure: room call of 3, pattern frames decoded per pair: \(figures.joined(separator: ", "))")
    }
}
