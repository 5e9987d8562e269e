import Foundation
import Testing
import TestSupport

/// Issue 16's test, peer-to-peer half (docs/rooms.md): three CLI peers and one Chromium on the
/// web page in one room call. The page starts the call of `#family`; carol (`join --accept auto`)
/// is rung and joins; alice and bob (`meshnode call '#family'`) join the running call. Six
/// pairwise calls, each set up by the later joiner with a `call` tagged with the room call.
/// Every participant decodes every other's video and hears its audio: the CLIs the test pattern
/// (frame numbers advance per sender) and Chromium's fake camera; Chromium, per participant,
/// `framesDecoded` advancing and audio packets and energy growing. Then the page reloads
/// mid-call and joins again: it calls everyone, who replace their pair with its old self, and
/// it decodes all three again (docs/rooms.md "Failure").
@Suite("room call: three CLI peers and Chromium", .serialized, .timeLimit(.minutes(4)),
       .enabled(if: chromiumAvailable, "chromium, chromedriver or selenium is missing: install Debian's chromium and chromium-driver, and selenium (`make test-deps`)"))
struct RoomCallBrowserTests {
    let browser = BrowserTests()

    @Test("the page starts a room call; carol is rung and joins, alice and bob join the running call; each of the four decodes every other's video and hears its audio")
    func threeCLIsAndChromium() async throws {
        let node = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { node.stop() }
        let peers = try CallPeers("room-call-browser")
        // Small pictures: three processes and a browser run twelve VP8 encoders on a shared machine.
        let sources = ["--source", "pattern:320x180@15", "--source", "tone"]
        let carol = try await peers.roomMember("carol", room: "#family", node: node.signalingURL, extra: sources)
        defer { carol.stop() }
        _ = try await peers.options("alice")
        _ = try await peers.options("bob")
        var cli: [String: Subprocess] = [:]
        defer { for process in cli.values { process.stop() } }
        let started = ContinuousClock.now
        // The page holds the call until only carol is left with it (alice and bob leave after
        // their --duration), then leaves; carol's calls end with it.
        let result = try await browser.runDriver(["room", "--name", "dave", "--room", "#family", "--kind", "video", "--others", "3",
                                                  "--wait", "90", "--seconds", "60", "--stay-with", "1", "--reload"],
                                                 url: "http://127.0.0.1:\(node.httpPort)/") { driver in
            try await driver.waitForOutput("\"in-call\"")
            // carol hears the ring (`started`) and joins: she calls the page. alice and bob stay
            // 15 s after their last pairwise call connected: past the page's reload.
            try await carol.waitForOutput(#""change":"started""#)
            cli["alice"] = try peers.startCall("alice", to: "#family", node: node.signalingURL, duration: 15, extra: sources)
            cli["bob"] = try peers.startCall("bob", to: "#family", node: node.signalingURL, duration: 15, extra: sources)
        }
        for name in ["alice", "bob"] {
            let process = try #require(cli[name])
            let exit = await process.waitForExit(timeout: TestDeadline.event * 2)
            #expect(exit == 0, "\(name): \(process.output.suffix(3000))")
        }
        // carol stays (join): her calls end as the others leave; the last one with each of them
        // (the page's pair from before its reload was replaced, and a call crossing the page's
        // may have been answered busy) carried media both ways.
        try await carol.waitForOutput(timeout: TestDeadline.event * 2, describe: "reports of carol's calls with alice, bob and dave") { output in
            guard let reports = try? RoomCallCLITests.reports(in: output) else { return false }
            return ["alice", "bob", "dave"].allSatisfy { reports[$0]?["ok"] as? Bool == true }
        }
        let elapsed = ContinuousClock.now - started

        // Chromium: from each of the other three, frames decoded and audio (the tone) grew
        // within one 2 s window once all were in.
        let growth = try #require(result["growth"] as? [String: [String: Any]], "\(result)")
        #expect(Set(growth.keys) == ["alice", "bob", "carol"], "the page decoded \(growth.keys.sorted())")
        for (name, grew) in growth {
            #expect((grew["framesDecoded"] as? Int ?? 0) > 0, "page ← \(name): \(grew)")
            #expect((grew["audioPackets"] as? Int ?? 0) > 0, "page ← \(name): \(grew)")
            #expect((grew["audioEnergy"] as? Double ?? 0) > 0, "page ← \(name): no sound energy \(grew)")
        }
        let rejoined = try #require(result["rejoined"] as? [String: Any], "no rejoin after the reload: \(result)")
        #expect(rejoined["sameCall"] as? Bool == true, "\(rejoined)")
        let again = rejoined["frames"] as? [String: Int] ?? [:]
        #expect(Set(again.keys) == ["alice", "bob", "carol"] && again.values.allSatisfy { $0 > 0 }, "after the reload: \(again)")
        // The CLIs: each other CLI's test pattern advancing, and the page's camera decoded (its
        // last pair with each, the one after the reload).
        let byParty = ["alice": try RoomCallCLITests.reports(in: cli["alice"]?.output ?? ""), "bob": try RoomCallCLITests.reports(in: cli["bob"]?.output ?? ""),
                       "carol": try RoomCallCLITests.reports(in: carol.output)]
        for (me, reports) in byParty {
            let others = Set(["alice", "bob", "carol", "dave"]).subtracting([me])
            #expect(Set(reports.keys) == others, "\(me) has pairwise calls with \(reports.keys.sorted())")
            for (other, report) in reports {
                if other == "dave" {
                    try CallPeers.expectMediaBothWays(report)
                    let streams = try #require(report["streams"] as? [[String: Any]])
                    let video = try #require(streams.first { $0["kind"] as? String == "video" }, "\(me) ← dave: no video")
                    #expect((video["receivedFrames"] as? Int ?? 0) > 0, "\(me) ← dave: \(video)")
                } else {
                    try RoomCallCLITests.expectDecoded(report, "\(me) ← \(other)")
                }
            }
        }
        let frames = growth.sorted { $0.key < $1.key }.map { "dave←\($0.key) +\($0.value["framesDecoded"] ?? 0) frames" }
        print("figure: room call of 4 (3 CLI + Chromium): setup \(result["setupMs"] ?? "-") ms, \(frames.joined(separator: ", ")) in \(result["windowMs"] ?? "-") ms; after a reload everyone decoded again in \(rejoined["ms"] ?? "-") ms; whole test \(elapsed)")
    }
}
