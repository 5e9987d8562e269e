import Foundation
import Testing
import TestSupport

/// The page as a participant of a forwarded call (docs/rooms.md "Added streams" and "Failure",
/// docs/web.md "Room calls"): a real `meshnode serve --forwarder` with a peer-to-peer limit of 2,
/// two CLI participants in an audio call, and Chromium joining third, so that its one call is
/// the one to the forwarder.
@Suite("the page in a forwarded call: its screen share, its ICE restart", .serialized, .timeLimit(.minutes(3)),
       .enabled(if: chromiumAvailable, "chromium, chromedriver or selenium is missing: install Debian's chromium and chromium-driver, and selenium (`make test-deps`)"))
struct ForwardedPageTests {
    let browser = BrowserTests()
    static let audioCall = ["--audio", "--source", "tone", "--source", "no-video"]

    /// Starts alice and carol in an audio call of #family (they stay `duration` s after their last call connected).
    func startCLIs(_ peers: CallPeers, node: MeshNodeServer, duration: Int) async throws -> [String: Subprocess] {
        var processes: [String: Subprocess] = [:]
        for name in ["alice", "carol"] {
            _ = try await peers.options(name)
            processes[name] = try peers.startCall(name, to: "#family", node: node.signalingURL, duration: duration, extra: Self.audioCall)
            try await Task.sleep(for: .seconds(1))
        }
        return processes
    }

    @Test("the page shares its screen in a forwarded audio call: the forwarder takes the new video and every CLI decodes it")
    func pageSharesInForwardedAudioCall() async throws {
        let node = try await MeshNodeServer(["--forwarder", "--room-call-mesh-limit", "2"], bind: ["127.0.0.1"])
        defer { node.stop() }
        let peers = try CallPeers("forwarded-page-share")
        var processes: [String: Subprocess] = [:]
        defer { for process in processes.values { process.stop() } }
        let result = try await browser.runDriver(["forwarder-page", "--name", "dave", "--room", "#family", "--kind", "audio", "--others", "2",
                                                  "--share", "--hold", "5"], url: "http://127.0.0.1:\(node.httpPort)/") { _ in
            processes = try await startCLIs(peers, node: node, duration: 22)
        }
        let shared = try #require(result["shared"] as? [String: Any], "\(result)")
        #expect(shared["sharer"] as? String == "dave" && shared["large"] as? Bool == true, "\(shared)")
        var figures: [String] = []
        for name in ["alice", "carol"] {
            let status = await processes[name]!.waitForExit(timeout: TestDeadline.event * 4 + .seconds(30))
            #expect(status == 0, "\(name): \(processes[name]!.output.suffix(3000))")
            let reports = try RoomCallCLITests.reports(in: processes[name]!.output)
            let report = try #require(reports["forwarder"], "\(name) has no report of a call to the forwarder: \(reports.keys.sorted())")
            let receptions = try #require(report["forwarded"] as? [[String: Any]], "\(name): \(report)")
            let fromPage = try #require(receptions.first { $0["from"] as? String == "dave" }, "\(name) got nothing of the page: \(receptions)")
            let video = (fromPage["streams"] as? [[String: Any]])?.first { $0["kind"] as? String == "video" }
            #expect((video?["receivedFrames"] as? Int ?? 0) >= 10, "\(name) ← the page's screen: \(fromPage)")
            figures.append("\(name)←dave screen \(video?["receivedFrames"] ?? 0) frames \(video?["width"] ?? "?")x\(video?["height"] ?? "?")")
        }
        print("figure: the page's screen share in a forwarded audio call: sent \(shared["framesSent"] ?? "?") frames; \(figures.joined(separator: ", "))")
    }

    @Test("the page's path to the forwarder is cut: it restarts ICE, the forwarder answers, media comes back in the same call",
          .enabled(if: getuid() == 0 && Tools.installed("nft"), "needs root and nftables"))
    func pageRestartsIceTowardsTheForwarder() async throws {
        let node = try await MeshNodeServer(["--forwarder", "--room-call-mesh-limit", "2"], bind: ["127.0.0.1"])
        defer { node.stop() }
        let peers = try CallPeers("forwarded-page-restart")
        var processes: [String: Subprocess] = [:]
        defer { for process in processes.values { process.stop() } }
        var participantsAfter: Double?
        let result = try await browser.runDriver(["forwarder-page", "--name", "dave", "--room", "#family", "--kind", "audio", "--others", "2",
                                                  "--cut", "--wait", "45"], url: "http://127.0.0.1:\(node.httpPort)/") { driver in
            processes = try await startCLIs(peers, node: node, duration: 40)
            try await driver.waitForOutput("\"event\": \"cut\"", timeout: TestDeadline.event * 4)
            let line = try #require(driver.output.split(separator: "\n").first { $0.contains("\"event\": \"cut\"") })
            let event = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let ports = try #require(event["ports"] as? [Int])
            // Every port the page gathered on, cut for longer than the restart takes: only the
            // restart's new candidates (new ports) bring media back.
            let cuts = ports.prefix(16).map { port in
                Task { try await LoopbackPathCut.drop(port: port, for: .seconds(15), table: "meshnode_test_fwdpage_\(port)") }
            }
            // Media is back through the forwarder: still three participants there (no second session).
            try await driver.waitForOutput("\"event\": \"restarted\"", timeout: TestDeadline.event * 4)
            participantsAfter = try await node.metric("meshnode_forwarder_participants_active")
            for cut in cuts { try await cut.value }
        }
        let restart = try #require(result["restart"] as? [String: Any], "\(result)")
        #expect(restart["sameCall"] as? Bool == true, "the page placed a new call: \(restart)")
        #expect((restart["restarts"] as? Int ?? 0) >= 1, "\(restart)")
        #expect(participantsAfter == 3, "the forwarder carries \(participantsAfter ?? -1) participants after the restart")
        for name in ["alice", "carol"] {
            let status = await processes[name]!.waitForExit(timeout: TestDeadline.event * 4 + .seconds(50))
            #expect(status == 0, "\(name): \(processes[name]!.output.suffix(3000))")
        }
        print("figure: the page's ICE restart towards the forwarder: restart seen \(restart["restartSeenMs"] ?? "?") ms after the cut, media back \(restart["backMs"] ?? "?") ms after the cut (restart took \(restart["restartMs"] ?? "?") ms), \(restart["restarts"] ?? "?") restart(s), same call \(restart["sameCall"] ?? "?")")
    }
}
