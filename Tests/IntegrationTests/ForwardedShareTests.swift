import Foundation
import Testing
import SDP
import Signaling
import TestSupport

/// A participant's later offer adds a stream to a forwarded call (docs/rooms.md "Added streams",
/// docs/protocol.md "Room calls", *Forwarded mode* item 4; RFC 3264 §8.1, RFC 8829 §5.2.2): a
/// screen share in an audio call becomes a source at the forwarder, which offers it to every
/// other participant. A real `meshnode serve --forwarder` (peer-to-peer limit 2) and CLI
/// participants; the attacker is a participant (the test, over signaling) whose offers add more
/// sections than the bound.
@Suite(.serialized, .timeLimit(.minutes(3))) struct ForwardedShareTests {
    static let audioCall = ["--audio", "--source", "tone", "--source", "no-video"]

    @Test("a participant of a forwarded audio call shares its screen: every other participant decodes it")
    func shareInForwardedAudioCall() async throws {
        let node = try await MeshNodeServer(["--forwarder", "--room-call-mesh-limit", "2"], bind: ["127.0.0.1"])
        defer { node.stop() }
        let peers = try CallPeers("forwarded-share")
        var processes: [String: Subprocess] = [:]
        defer { for process in processes.values { process.stop() } }
        // dave joins third (the call is forwarded from then on) and shares a pattern 2 s after
        // his call to the forwarder connected.
        let share = ["--share", "pattern:192x128@10", "--share-after", "2"]
        for (name, extra) in [("alice", [String]()), ("carol", []), ("dave", share)] {
            _ = try await peers.options(name)
            processes[name] = try peers.startCall(name, to: "#family", node: node.signalingURL, duration: 14, extra: Self.audioCall + extra)
            try await Task.sleep(for: name == "alice" ? .seconds(1) : .milliseconds(500))
        }
        for name in ["alice", "carol", "dave"] {
            let status = await processes[name]!.waitForExit(timeout: TestDeadline.event * 4 + .seconds(40))
            #expect(status == 0, "\(name): \(processes[name]!.output.suffix(4000))")
        }
        #expect(processes["dave"]!.output.contains("sharing (mid"), "dave: \(processes["dave"]!.output.suffix(3000))")
        var figures: [String] = []
        for name in ["alice", "carol"] {
            let reports = try RoomCallCLITests.reports(in: processes[name]!.output)
            let report = try #require(reports["forwarder"], "\(name) has no report of a call to the forwarder: \(reports.keys.sorted())")
            let receptions = try #require(report["forwarded"] as? [[String: Any]], "\(name): \(report)")
            let fromDave = try #require(receptions.first { $0["from"] as? String == "dave" }, "\(name) got nothing of dave: \(receptions)")
            let streams = try #require(fromDave["streams"] as? [[String: Any]])
            let video = try #require(streams.first { $0["kind"] as? String == "video" }, "\(name) ← dave: no video (the share): \(streams)")
            let audio = try #require(streams.first { $0["kind"] as? String == "audio" }, "\(name) ← dave: no audio")
            let first = video["firstPatternFrame"] as? Int ?? -1
            let last = video["lastPatternFrame"] as? Int ?? -1
            #expect(first >= 0 && last > first && (video["patternFrames"] as? Int ?? 0) >= 5, "\(name) ← dave's share: pattern frames \(first)…\(last)")
            #expect(video["width"] as? Int == 192, "\(name) ← dave's share: \(video)")
            #expect((audio["receivedFrames"] as? Int ?? 0) > 0, "\(name) ← dave: no audio decoded")
            figures.append("\(name)←dave share frames \(first)…\(last) (\(video["patternFrames"] ?? "?") decoded)")
        }
        print("figure: screen share added to a forwarded audio call: \(figures.joined(separator: ", "))")
    }

    @Test("a participant's offers add more sections than the bound: the excess is refused with port 0, then the session ends; the call goes on")
    func tooManySectionsRefused() async throws {
        let node = try await MeshNodeServer(["--forwarder", "--room-call-mesh-limit", "2"], bind: ["127.0.0.1"])
        defer { node.stop() }
        let peers = try CallPeers("forwarded-share-attack")
        var processes: [String: Subprocess] = [:]
        defer { for process in processes.values { process.stop() } }
        for name in ["alice", "carol"] {
            _ = try await peers.options(name)
            processes[name] = try peers.startCall(name, to: "#family", node: node.signalingURL, duration: 12, extra: Self.audioCall)
            try await Task.sleep(for: .seconds(1))
        }
        // mallory joins third: the call moves to the forwarder, and she calls it.
        let mallory = SignalingClient(url: node.signalingURL, name: "mallory", identity: .generate(), requestTimeout: .seconds(20))
        let events = EventLog(mallory)
        try await mallory.connect()
        defer { Task { await mallory.close() } }
        try await mallory.join(room: "#family")
        let running = try await events.wait(timeout: TestDeadline.event * 2) { event -> RoomCallState? in
            if case .roomCall(let state) = event, state.participants.count >= 2 { state } else { nil }
        }
        _ = try await mallory.roomCall(.join, room: "#family", call: running.call)
        _ = try await events.wait(timeout: TestDeadline.event * 2) { event -> Bool? in
            if case .roomCall(let state) = event, state.forwarder != nil { true } else { nil }
        }
        var call = CallPayload(type: .call, from: "mallory", to: "forwarder", call: "m-share", kind: .audio, ts: Date().timeIntervalSince1970)
        call.room = "#family"
        call.roomCall = running.call
        try await mallory.callSetup(call)
        _ = try await events.wait(timeout: TestDeadline.event) { event -> Bool? in
            if case .callSetup(let payload) = event, payload.call == "m-share", payload.type == .accept { true } else { nil }
        }
        var version = 1
        func offer(video: Int, audio: Int, extraVideo: Int = 0) throws -> String {
            var local = JSEPOffer.LocalParameters(
                iceUsernameFragment: "mall", icePassword: "mallorymallorymallory0", fingerprint: SDPFingerprint(hashFunction: "sha-256", digest: Array(repeating: 7, count: 32)),
                cname: "mallory", streamID: "mallory", kinds: ["audio", "video"], sending: ["audio": (1001, nil), "video": (1002, 1003)], sessionID: 77, sessionVersion: version)
            var description = try JSEPOffer.make(local: local)
            var ssrc: UInt32 = 2000
            for kind in Array(repeating: "video", count: video + extraVideo) + Array(repeating: "audio", count: audio) {
                local.kinds = [kind]
                local.sending = [kind: (ssrc, kind == "video" ? ssrc + 1 : nil)]
                ssrc += 2
                var section = try #require(try JSEPOffer.make(local: local).media.first)
                let mid = String(description.media.count)
                section.attributes = section.attributes.map { if case .mid = $0 { .mid(mid) } else if case .direction = $0 { .direction(.sendonly) } else { $0 } }
                description.media.append(section)
            }
            description.attributes = [.group(SDPGroup(semantics: "BUNDLE", identifiers: description.media.compactMap(\.mid)))]
            version += 1
            return description.serialized
        }
        func answer(after start: Int) async throws -> SessionDescription {
            let text = try await events.wait(timeout: TestDeadline.event * 2, after: start) { event -> String? in
                if case .callSetup(let payload) = event, payload.call == "m-share", payload.sdpType == "answer" { payload.sdp } else { nil }
            }
            return try SessionDescription(parsing: text)
        }
        var seen = await events.events.count
        try await mallory.callSetup(.sdp, to: "forwarder", call: "m-share", sdpType: "offer", sdp: try offer(video: 0, audio: 0))
        _ = try await answer(after: seen)
        // Four added videos and two added audios: two videos and one audio taken, the rest port 0.
        seen = await events.events.count
        try await mallory.callSetup(.sdp, to: "forwarder", call: "m-share", sdpType: "offer", sdp: try offer(video: 4, audio: 2))
        let later = try await answer(after: seen)
        #expect(later.media.map(\.port).map { $0 != 0 } == [true, true, true, true, false, false, true, false], "ports \(later.media.map(\.port))")
        // Past eight appended sections in the session: refused as a whole, her session ends with the reason.
        seen = await events.events.count
        try await mallory.callSetup(.sdp, to: "forwarder", call: "m-share", sdpType: "offer", sdp: try offer(video: 4, audio: 2, extraVideo: 3))
        let reason = try await events.wait(timeout: TestDeadline.event * 2, after: seen) { event -> String? in
            if case .callSetup(let payload) = event, payload.call == "m-share", payload.type == .hangup { payload.reason ?? "" } else { nil }
        }
        #expect(reason.contains("at most \(8)"), "\(reason)")
        // The call goes on: alice and carol decode each other through the forwarder.
        for name in ["alice", "carol"] {
            // Its exit status is not the check: the CLI also judges mallory's streams, which the
            // forwarder may have offered it before her session ended and which never carried media
            // (she only signals), so it can exit 1 when it bound them. What it decoded of the
            // other participant is the check.
            let status = await processes[name]!.waitForExit(timeout: TestDeadline.event * 4 + .seconds(40))
            #expect(status != nil, "\(name) did not end: \(processes[name]!.output.suffix(4000))")
            let reports = try RoomCallCLITests.reports(in: processes[name]!.output)
            let report = try #require(reports["forwarder"], "\(name) has no report of a call to the forwarder: \(reports.keys.sorted())")
            let receptions = try #require(report["forwarded"] as? [[String: Any]], "\(name): \(report)")
            let other = name == "alice" ? "carol" : "alice"
            let reception = try #require(receptions.first { $0["from"] as? String == other }, "\(name) got nothing of \(other)")
            let audio = (reception["streams"] as? [[String: Any]])?.first { $0["kind"] as? String == "audio" }
            #expect((audio?["receivedFrames"] as? Int ?? 0) > 50, "\(name) ← \(other): \(reception)")
        }
        #expect(node.process.output.contains("refused a section of mallory's offer"), "the forwarder logged no refusal")
    }
}
