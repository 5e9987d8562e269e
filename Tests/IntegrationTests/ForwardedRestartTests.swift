import Foundation
import Testing
import TestSupport

/// A forwarded participant whose path breaks comes back without leaving the call (docs/rooms.md
/// "Failure", docs/protocol.md "Room calls", *Forwarded mode*): its ICE restart offer (RFC 8445
/// §9, RFC 8839 §4.4.1.1.1) is answered by the forwarder, which restarts its own agent and keeps
/// the DTLS session. A real `meshnode serve --forwarder` (peer-to-peer limit 2) and three
/// `meshnode call '#family'`: dave joins third, so his only call is the one to the forwarder;
/// nftables drops his port on loopback for 6 s.
@Suite(.serialized, .timeLimit(.minutes(3))) struct ForwardedRestartTests {
    static let fps = 10.0

    @Test("a forwarded participant's path dies for 6 s: its ICE restart is answered and it decodes the others again, in the same call",
          .enabled(if: getuid() == 0 && Tools.installed("nft"), "needs root and nftables"))
    func restartAnswered() async throws {
        let node = try await MeshNodeServer(["--forwarder", "--room-call-mesh-limit", "2"], bind: ["127.0.0.1"])
        defer { node.stop() }
        let peers = try CallPeers("forwarded-restart")
        let sources = ["--source", "pattern:192x128@\(Int(Self.fps))", "--source", "tone"]
        var processes: [String: Subprocess] = [:]
        defer { for process in processes.values { process.stop() } }
        var started: [String: Date] = [:]
        for (name, duration) in [("alice", 30), ("carol", 30), ("dave", 22)] {
            _ = try await peers.options(name)
            started[name] = Date()
            processes[name] = try peers.startCall(name, to: "#family", node: node.signalingURL, duration: duration, extra: sources)
            try await Task.sleep(for: name == "alice" ? .seconds(1) : .milliseconds(500))
        }
        let dave = processes["dave"]!
        do {
            try await waitUntil("the forwarder carries three participants", limit: TestDeadline.event * 4, interval: .milliseconds(200)) {
                (try? await node.metric("meshnode_forwarder_participants_active")) == 3
            }
        } catch {
            for (name, process) in processes.sorted(by: { $0.key < $1.key }) { print("\(name): \(process.output.suffix(3000))") }
            throw error
        }
        // dave joined a forwarded call: his one selected pair is the one to the forwarder.
        let port = try await LoopbackPathCut.selectedPort(of: dave)
        try await Task.sleep(for: .seconds(3))  // media flows on the first path for a while
        let cut = Date()
        try await LoopbackPathCut.drop(port: port, for: .seconds(6), table: "meshnode_test_fwd_\(port)")

        let status = await dave.waitForExit(timeout: TestDeadline.event * 4 + .seconds(40))
        #expect(status == 0, "dave: \(dave.output.suffix(4000))")
        let reports = try RoomCallCLITests.reports(in: dave.output)
        let report = try #require(reports["forwarder"], "dave has no report of a call to the forwarder: \(reports.keys.sorted())")
        #expect(report["ok"] as? Bool == true, "\(report)")
        #expect((report["iceRestarts"] as? Int ?? 0) >= 1, "\(report)")
        // One call to the forwarder all along: no second call placed after the outage.
        let calls = dave.output.components(separatedBy: "is forwarded by forwarder; calling it").count - 1
        #expect(calls == 1, "dave called the forwarder \(calls) times")
        let receptions = try #require(report["forwarded"] as? [[String: Any]], "\(report)")
        var figures: [String] = []
        for sender in ["alice", "carol"] {
            let reception = try #require(receptions.first { $0["from"] as? String == sender }, "dave got nothing of \(sender)")
            let streams = try #require(reception["streams"] as? [[String: Any]])
            let video = try #require(streams.first { $0["kind"] as? String == "video" }, "dave ← \(sender): no video")
            let last = video["lastPatternFrame"] as? Int ?? -1
            // The pattern numbers at most `fps` frames a second from the sender's start: a number
            // past what it could have reached when the path was cut was decoded after the outage.
            let bound = Int(cut.timeIntervalSince(started[sender]!) * Self.fps) + Int(Self.fps)
            #expect(last > bound, "dave ← \(sender): last pattern frame \(last), at most \(bound) existed when the path was cut")
            figures.append("dave←\(sender) last frame \(last) (bound at the cut \(bound))")
        }
        print("figure: forwarded ICE restart after a 6 s outage: \(report["iceRestarts"] ?? "?") restart(s), media back \(report["restartMs"] ?? "-") ms after the restart began; \(figures.joined(separator: ", "))")
        for name in ["alice", "carol"] { _ = await processes[name]!.waitForExit(timeout: .seconds(60)) }
    }
}
