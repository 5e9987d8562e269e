import Foundation
import Testing
import TestSupport

/// Issue 16, a room call in a room of another node from the page (docs/rooms.md "Room calls in
/// a room of another node"): `#family` is hosted by east, where carol waits (`join --accept
/// auto`); the page (dave) at west opens `#family@east` and starts its call through west's link;
/// carol is rung and joins, alice at west joins the running call from the CLI. The page decodes
/// both (frames, audio energy growing); each CLI decodes the other's pattern and the page's video.
@Suite("room call across two nodes: two CLI peers and Chromium", .serialized, .timeLimit(.minutes(3)),
       .enabled(if: chromiumAvailable, "chromium, chromedriver or selenium is missing: install Debian's chromium and chromium-driver, and selenium (`make test-deps`)"))
struct RoomCallAcrossNodesBrowserTests {
    let browser = BrowserTests()

    @Test("the page at west starts the call of a room of east; carol at east and alice at west join; each decodes the others")
    func pageAtTheMembersNode() async throws {
        let nodes = try await LinkedNodes.start()
        defer { nodes.stop() }
        let (east, west, eastAddress, westAddress) = (nodes.east, nodes.west, nodes.eastAddress, nodes.westAddress)
        let peers = try CallPeers("room-call-links-browser")
        let sources = ["--source", "pattern:320x180@15", "--source", "tone"]
        let room = "#family@\(eastAddress)"
        let carol = try await peers.roomMember("carol", room: "#family", node: east.signalingURL, extra: sources)
        defer { carol.stop() }
        _ = try await peers.options("alice")
        var alice: Subprocess?
        defer { alice?.stop() }
        let result = try await browser.runDriver(["room", "--name", "dave", "--room", room, "--kind", "video", "--others", "2",
                                                  "--wait", "60", "--seconds", "40", "--stay-with", "1"],
                                                 url: "http://\(westAddress)/") { driver in
            try await driver.waitForOutput("\"in-call\"")
            try await carol.waitForOutput(#""change":"started""#)
            alice = try peers.startCall("alice", to: room, node: west.signalingURL, duration: 8, extra: sources)
        }
        let aliceProcess = try #require(alice)
        #expect(await aliceProcess.waitForExit(timeout: TestDeadline.event * 2) == 0, "alice: \(aliceProcess.output.suffix(3000))")
        try await carol.waitForOutput(timeout: TestDeadline.event * 2, describe: "carol's reports with alice and dave") { output in
            guard let reports = try? RoomCallCLITests.reports(in: output) else { return false }
            return ["alice@\(westAddress)", "dave@\(westAddress)"].allSatisfy { reports[$0]?["ok"] as? Bool == true }
        }
        // The page writes carol (east's peer) qualified, alice (its own node's) bare.
        let growth = try #require(result["growth"] as? [String: [String: Any]], "\(result)")
        #expect(Set(growth.keys) == ["alice", "carol@\(eastAddress)"], "the page decoded \(growth.keys.sorted())")
        for (name, grew) in growth {
            #expect((grew["framesDecoded"] as? Int ?? 0) > 0, "page ← \(name): \(grew)")
            #expect((grew["audioEnergy"] as? Double ?? 0) > 0, "page ← \(name): no sound energy \(grew)")
        }
        let byParty = ["alice": (try RoomCallCLITests.reports(in: aliceProcess.output), "carol@\(eastAddress)", "dave"),
                       "carol": (try RoomCallCLITests.reports(in: carol.output), "alice@\(westAddress)", "dave@\(westAddress)")]
        for (me, (reports, cli, page)) in byParty {
            #expect(Set(reports.keys) == [cli, page], "\(me) has pairwise calls with \(reports.keys.sorted())")
            if let report = reports[cli] { try RoomCallCLITests.expectDecoded(report, "\(me) ← \(cli)") }
            if let report = reports[page] {
                try CallPeers.expectMediaBothWays(report)
                let video = (report["streams"] as? [[String: Any]])?.first { $0["kind"] as? String == "video" } ?? [:]
                #expect((video["receivedFrames"] as? Int ?? 0) > 0, "\(me) ← dave: \(video)")
            }
        }
        let frames = growth.sorted { $0.key < $1.key }.map { "dave←\($0.key) +\($0.value["framesDecoded"] ?? 0) frames" }
        print("figure: room call across two nodes (2 CLI + Chromium): setup \(result["setupMs"] ?? "-") ms, \(frames.joined(separator: ", ")) in \(result["windowMs"] ?? "-") ms")
    }
}
