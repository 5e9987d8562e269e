import Foundation
import Testing
import Signaling
import TestSupport

/// Issue 16, a forwarded room call with members of another node (docs/rooms.md "Forwarded calls
/// for members of other nodes"): `#ops` is hosted by east, which runs a forwarder and takes at
/// most 2 participants peer to peer; bob at east starts the call, alice at west joins (a
/// pairwise call across the link), carol at west joins as the third and the call moves to
/// east's forwarder.
/// West checks east's signed assignment under the key its link proved and signs its own for
/// alice and carol, who call `forwarder@east` across the link. Every participant decodes every
/// other's test pattern through the forwarder. The attacker is mallory at west: a member of the
/// room, not in the call, calling the forwarder anyway.
@Suite(.serialized, .timeLimit(.minutes(4))) struct RoomCallForwardedAcrossNodesTests {
    @Test("members of two nodes in a forwarded call: each decodes the others through east's forwarder")
    func membersOfTwoNodesThroughOneForwarder() async throws {
        let nodes = try await LinkedNodes.start(eastArguments: ["--forwarder", "--room-call-mesh-limit", "2"])
        defer { nodes.stop() }
        let (east, west, eastAddress, westAddress) = (nodes.east, nodes.west, nodes.eastAddress, nodes.westAddress)
        let peers = try CallPeers("room-call-forwarded-links")
        let sources = ["--source", "pattern:320x180@10", "--source", "tone"]
        let room = "#ops@\(eastAddress)"
        for name in ["bob", "alice", "carol"] { _ = try await peers.options(name) }
        // dave at east makes the room (a peer of another node joins only an existing one).
        let dave = SignalingClient(url: east.signalingURL, name: "dave", identity: .generate(), requestTimeout: .seconds(20))
        try await dave.connect()
        defer { Task { await dave.close() } }
        try await dave.join(room: "#ops")
        // mallory at west: a member of the room, never in the call; she watches its states.
        let mallory = SignalingClient(url: west.signalingURL, name: "mallory", identity: .generate(), requestTimeout: .seconds(20))
        let events = EventLog(mallory)
        try await mallory.connect()
        defer { Task { await mallory.close() } }
        try await mallory.join(room: room)
        let began = ContinuousClock.now
        // Each stays `duration` after its latest call connected (the one to the forwarder).
        let bob = try peers.startCall("bob", to: "#ops", node: east.signalingURL, duration: 10, extra: sources)
        defer { bob.stop() }
        try await Task.sleep(for: .seconds(1))
        let alice = try peers.startCall("alice", to: room, node: west.signalingURL, duration: 8, extra: sources)
        defer { alice.stop() }
        // carol joins once both are in: the third participant, past the limit of 2.
        _ = try await events.wait(timeout: TestDeadline.event * 3) { event -> Bool? in
            if case .roomCall(let state) = event, state.participants.count == 2 { true } else { nil }
        }
        let carol = try peers.startCall("carol", to: room, node: west.signalingURL, duration: 8, extra: sources)
        defer { carol.stop() }

        // mallory hears the forwarded state with west's assignment, verified under the key she
        // pinned for west (not east's).
        let forwarded = try await events.wait(timeout: TestDeadline.event * 3) { event -> RoomCallState? in
            if case .roomCall(let state) = event, state.forwarder != nil { state } else { nil }
        }
        #expect(forwarded.room == room && forwarded.forwarder?.address == "forwarder@\(eastAddress)")
        #expect(forwarded.forwarderRefusal == nil)
        // Her tagged call to the forwarder: west refuses it (she is no participant).
        var payload = CallPayload(type: .call, from: "mallory", to: "forwarder@\(eastAddress)", call: "m-1", kind: .video, ts: Date().timeIntervalSince1970)
        payload.room = room
        payload.roomCall = forwarded.call
        do {
            try await mallory.callSetup(payload)
            Issue.record("west relayed a non-participant's call to east's forwarder")
        } catch let error as SignalingError {
            #expect(error.code == .forbidden, "\(error)")
        }

        let limit = TestDeadline.event * 6 + .seconds(20)
        for (name, process) in [("alice", alice), ("carol", carol), ("bob", bob)] {
            let status = await process.waitForExit(timeout: limit)
            #expect(status == 0, "\(name): \(process.output.suffix(4000))")
        }
        // Each writes the forwarder as its node does; the forwarder names senders as east writes them.
        let everyone = ["bob", "alice@\(westAddress)", "carol@\(westAddress)"]
        let runs: [(name: String, output: String, forwarder: String, me: String)] = [
            ("alice", alice.output, "forwarder@\(eastAddress)", "alice@\(westAddress)"),
            ("carol", carol.output, "forwarder@\(eastAddress)", "carol@\(westAddress)"),
            ("bob", bob.output, "forwarder", "bob"),
        ]
        var figures: [String] = []
        for run in runs {
            let reports = try RoomCallCLITests.reports(in: run.output)
            let report = try #require(reports[run.forwarder], "\(run.name) has no report of a call to \(run.forwarder): \(reports.keys.sorted())")
            #expect(report["ok"] as? Bool == true, "\(run.name): \(report)")
            let receptions = try #require(report["forwarded"] as? [[String: Any]], "\(run.name): \(report)")
            let others = Set(everyone).subtracting([run.me])
            #expect(Set(receptions.compactMap { $0["from"] as? String }) == others, "\(run.name) received \(receptions.map { $0["from"] ?? "?" })")
            for reception in receptions {
                let from = reception["from"] as? String ?? "?"
                let streams = try #require(reception["streams"] as? [[String: Any]])
                let video = try #require(streams.first { $0["kind"] as? String == "video" }, "\(run.name) ← \(from): no video")
                let audio = try #require(streams.first { $0["kind"] as? String == "audio" }, "\(run.name) ← \(from): no audio")
                let first = video["firstPatternFrame"] as? Int ?? -1
                let last = video["lastPatternFrame"] as? Int ?? -1
                #expect(first >= 0 && last > first && (video["patternFrames"] as? Int ?? 0) >= 2, "\(run.name) ← \(from): pattern frames \(first)…\(last)")
                #expect((audio["receivedFrames"] as? Int ?? 0) > 0, "\(run.name) ← \(from): no audio decoded")
                figures.append("\(run.name)←\(from) \(first)…\(last)")
            }
        }
        print("figure: forwarded room call across two nodes (east forwards; alice, carol at west), \(ContinuousClock.now - began) in all; pattern frames per pair: \(figures.joined(separator: ", "))")
    }
}
