import Foundation
import Media
import NIOCore
import Testing
import TestSupport
import Codecs

/// Issue 6 with the CLI: `meshnode join --accept auto --record` answers, `meshnode call` calls;
/// the recordings are real VP8/WAV files whose test-pattern frame numbers advance.
@Suite(.serialized, .timeLimit(.minutes(5))) struct CallCLITests {
    @Test("CLI ↔ CLI video+audio call through one node: media both ways, recordings decode",
          .enabled(if: Tools.ffmpeg, "ffprobe reads the recordings: install Debian's ffmpeg (`make deps`)"))
    func callThroughOneNode() async throws {
        let node = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { node.stop() }
        let peers = try CallPeers("one-node")
        let bob = try await peers.join("bob", node: node.signalingURL)
        defer { bob.stop() }
        let report = try await peers.call("alice", to: "bob", node: node.signalingURL, duration: 4)
        try CallPeers.expectMediaBothWays(report)
        try await peers.expectRecording(of: bob, from: "alice")
    }

    /// The receive path of a call (docs/calls.md "How a received packet travels"): the ICE
    /// agent's GLib thread hands each datagram to the DTLS-SRTP transport, which hands the
    /// decrypted packet to the media engine's queue on that thread. No packet waits in the
    /// transport's queue for a task of its own (one hand-off per packet, not four).
    @Test("CLI ↔ CLI call: every received packet goes from the ICE agent to the media engine, none through the transport's queue")
    func receivedPacketsHandedStraightOver() async throws {
        let node = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { node.stop() }
        let peers = try CallPeers("hand-off")
        let bob = try await peers.join("bob", node: node.signalingURL)
        defer { bob.stop() }
        let report = try await peers.call("alice", to: "bob", node: node.signalingURL, duration: 3)
        try CallPeers.expectMediaBothWays(report)
        try await bob.waitForOutput(#""event":"call-ended""#)
        let answered = try CallPeers.callEndedReport(of: bob)
        for (side, report) in [("caller", report), ("callee", answered)] {
            let handOff = try #require(report["receiveHandOff"] as? [String: Int], "\(side): \(report)")
            let received = (report["streams"] as? [[String: Any]] ?? []).reduce(0) { $0 + ($1["receivedPackets"] as? Int ?? 0) }
            #expect(received > 0, "\(side) received media: \(report)")
            #expect((handOff["direct"] ?? 0) >= received, "\(side): every RTP packet handed straight over: \(handOff), \(received) received")
            #expect(handOff["queued"] == 0, "\(side): none queued in the transport: \(handOff)")
        }
    }

    @Test("CLI ↔ CLI call between peers on two linked nodes (name@host:port)",
          .enabled(if: Tools.ffmpeg, "ffprobe reads the recordings: install Debian's ffmpeg (`make deps`)"))
    func callThroughLinkedNodes() async throws {
        let east = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { east.stop() }
        let west = try await MeshNodeServer(["--link", east.signalingURL], bind: ["127.0.0.1"])
        defer { west.stop() }
        let peers = try CallPeers("linked")
        let bob = try await peers.join("bob", node: east.signalingURL)
        defer { bob.stop() }
        // West's peers can route to east once west's link to east is up.
        try await waitUntil("west's link to east", interval: .milliseconds(100)) {
            (try? await west.meshStatus().links.contains("127.0.0.1:\(east.httpPort)")) == true
        }
        let report = try await peers.call("alice", to: "bob@127.0.0.1:\(east.httpPort)", node: west.signalingURL, duration: 3)
        try CallPeers.expectMediaBothWays(report)
        try await peers.expectRecording(of: bob, from: "alice@127.0.0.1:\(west.httpPort)")
    }

    @Test("relay-only: the call goes through the node's TURN relay")
    func callThroughTURN() async throws {
        let node = try await MeshNodeServer(["--allow-peer", "127.0.0.0/8"], bind: ["127.0.0.1"])
        defer { node.stop() }
        let peers = try CallPeers("relay")
        let bob = try await peers.join("bob", node: node.signalingURL)
        defer { bob.stop() }
        let report = try await peers.call("alice", to: "bob", node: node.signalingURL, duration: 3, extra: ["--relay-only"])
        try CallPeers.expectMediaBothWays(report)
        let path = try #require(report["path"] as? [String: Any])
        #expect(path["local"] as? String == "relay", "\(path)")
        #expect(path["relay"] is String)
    }

    @Test("a call the callee declines fails with a reason and exit 1")
    func declined() async throws {
        let node = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { node.stop() }
        let peers = try CallPeers("declined")
        let bob = try await peers.join("bob", node: node.signalingURL, accept: "never")
        defer { bob.stop() }
        let report = try await peers.call("alice", to: "bob", node: node.signalingURL, duration: 2, expectExit: 1)
        #expect(report["ok"] as? Bool == false)
        #expect((report["error"] as? String ?? "").contains("busy"), "\(report)")
    }

    @Test("the home node is killed mid-call: media keeps flowing, the callee comes back online")
    func nodeKilledDuringCall() async throws {
        let http = MeshNodeServer.nextHTTPPort()
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("meshnode-data-\(UUID().uuidString)").path
        var node: MeshNodeServer? = try await MeshNodeServer(["--data-dir", data], bind: ["127.0.0.1"], httpPort: http)
        let url = node!.signalingURL
        let peers = try CallPeers("node-kill")
        let bob = try await peers.join("bob", node: url)
        defer { bob.stop() }
        _ = try await peers.options("alice")
        // Long enough for the node to die and come back well within the call on a busy machine.
        let alice = try peers.startCall("alice", to: "bob", node: url, duration: 30)
        // Once ICE has selected a pair the media path needs the node no more (DTLS runs on it
        // with the fingerprints already exchanged).
        try await bob.waitForOutput("selected pair")
        node?.process.terminate(SIGKILL)
        _ = await node?.process.waitForExit()
        node = try await MeshNodeServer(["--data-dir", data], bind: ["127.0.0.1"], httpPort: http)
        defer { node?.stop() }
        let restarted = Date()
        try await bob.waitForOutput(#""event":"reconnected""#)
        print("node-kill: bob back online \(Int(Date().timeIntervalSince(restarted) * 1000)) ms after the restart")
        #expect(await alice.waitForExit(timeout: .seconds(120)) == 0, "\(alice.output)")
        let report = try CallPeers.report(from: alice.output)
        try CallPeers.expectMediaBothWays(report)
        // Media did not depend on the node: bob recorded pictures alice sent after the node had
        // died and come back (each test-pattern picture carries its send time).
        try await bob.waitForOutput(#""event":"call-ended""#)
        let sent = try peers.recordedSendTimes()
        let after = sent.filter { $0 > UInt64(restarted.timeIntervalSince1970 * 1000) }
        #expect(!after.isEmpty, "no picture sent after the restart was recorded (\(sent.count) in all)")
        print("node-kill: bob recorded \(sent.count) pictures, \(after.count) sent after the restart")
    }

    @Test("the path dies for 5 s mid-call (nftables drops it): the silence is noticed, ICE restarts, media comes back",
          .enabled(if: getuid() == 0 && Tools.installed("nft"), "needs root and nftables"))
    func iceRestartAfterPathLoss() async throws {
        let node = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { node.stop() }
        let peers = try CallPeers("restart")
        let bob = try await peers.join("bob", node: node.signalingURL)
        defer { bob.stop() }
        _ = try await peers.options("alice")
        // Long enough for the outage, the restart and media after it on a busy machine.
        let alice = try peers.startCall("alice", to: "bob", node: node.signalingURL, duration: 40)
        let port = try await LoopbackPathCut.selectedPort(of: bob)
        try await Task.sleep(for: .seconds(2))  // media flows on the first path for a while
        // Drop the callee's selected port both ways, on loopback only, in a table of our own.
        try await LoopbackPathCut.drop(port: port, for: .seconds(5), table: "meshnode_test_\(port)")
        let restored = Date()
        #expect(await alice.waitForExit(timeout: .seconds(120)) == 0, "\(alice.output.suffix(3000))")
        let report = try CallPeers.report(from: alice.output)
        try CallPeers.expectMediaBothWays(report)
        #expect((report["iceRestarts"] as? Int ?? 0) >= 1, "\(report)")
        // Media came back: bob recorded pictures sent after the path was restored.
        try await bob.waitForOutput(#""event":"call-ended""#)
        let sent = try peers.recordedSendTimes()
        #expect(sent.contains { $0 > UInt64(restored.timeIntervalSince1970 * 1000) }, "no picture sent after the outage was recorded")
        print("ICE restart after a 5 s outage: media back \(report["restartMs"] ?? "-") ms after the restart began")
    }

    @Test("desktop sharing under Xvfb: the receiver decodes the shared screen",
          .enabled(if: Tools.xvfb, "Xvfb or xsetroot is not installed (Debian xvfb, x11-xserver-utils; `make deps` installs them)"))
    func desktopShare() async throws {
        let node = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { node.stop() }
        let display = try await VirtualDisplay.start(width: 800, height: 600)
        defer { withExtendedLifetime(display) {} }
        #expect(try await display.run("xsetroot", ["-solid", "#00ff00"]) == 0)
        let peers = try CallPeers("share")
        let bob = try await peers.join("bob", node: node.signalingURL)
        defer { bob.stop() }
        let report = try await peers.call("alice", to: "bob", node: node.signalingURL, duration: 3, command: "share",
                                          extra: ["--source", "x11:\(display.name)"])
        try CallPeers.expectMediaBothWays(report)
        #expect(report["kind"] as? String == "desktop")
        // Bob decodes an 800×600 green screen.
        try await bob.waitForOutput(#""event":"call-ended""#)
        let path = try #require(try FileManager.default.contentsOfDirectory(atPath: peers.recordings).first { $0.hasSuffix("video.ivf") })
        let reader = try IVFFileReader(path: peers.recordings + "/" + path)
        let decoder = try VP8Decoder()
        var last: VideoFrame?
        while let frame = try reader.nextFrame() { if let picture = try decoder.decode(frame.data) { last = picture } }
        let picture = try #require(last)
        #expect(picture.width == 800 && picture.height == 600)
        // BT.601 limited range: pure green has luma about 145.
        let luma = Int(picture.y[300 * picture.width + 400])
        #expect(abs(luma - 145) < 12, "luma \(luma)")
    }
}

/// Identities, pins and recordings of the peers of one test, and the commands they run.
struct CallPeers {
    let home: TemporaryDirectory
    var recordings: String { home.path + "/recordings" }

    init(_ name: String) throws {
        home = TemporaryDirectory(name)
    }

    /// The peer options of `name`; its identity is made on first use.
    func options(_ name: String) async throws -> [String] {
        let identity = home.path + "/\(name).id"
        if !FileManager.default.fileExists(atPath: identity) {
            let keygen = try Subprocess(MeshNodeServer.binary, ["keygen", "--identity", identity])
            guard await keygen.waitForExit() == 0 else { throw TestFailure("keygen failed: \(keygen.output)") }
        }
        return knownOptions(name)
    }

    /// The peer options of `name` whose identity exists.
    func knownOptions(_ name: String) -> [String] {
        ["--name", name, "--identity", home.path + "/\(name).id", "--known-peers", home.path + "/\(name)-pins.json", "--ice-address", "127.0.0.1"]
    }

    /// `meshnode join --accept auto --record` that is online.
    func join(_ name: String, node: String, accept: String = "auto") async throws -> Subprocess {
        let process = try Subprocess(MeshNodeServer.binary, ["join", "--node", node, "--json", "--accept", accept, "--record", recordings]
                                     + (try await options(name)), name: "join \(name)")
        try await process.waitForOutput(#""event":"connected""#)
        return process
    }

    /// Starts `meshnode call|share … --json`; `options(name)` must have run for `name`.
    func startCall(_ name: String, to address: String, node: String, duration: Int, command: String = "call", extra: [String] = []) throws -> Subprocess {
        try Subprocess(MeshNodeServer.binary, [command, address, "--node", node, "--duration", "\(duration)", "--json"] + knownOptions(name) + extra,
                       name: "\(command) \(name)")
    }

    /// Starts `meshnode join --accept auto --room ROOM --json` for `name` (it joins a room call
    /// when rung) and returns once it is in the room.
    func roomMember(_ name: String, room: String, node: String, extra: [String] = []) async throws -> Subprocess {
        let member = try Subprocess(MeshNodeServer.binary, ["join", "--node", node, "--json", "--accept", "auto", "--room", room]
                                    + extra + (try await options(name)), name: "join \(name)")
        do {
            try await member.waitForOutput(#""change":"joined""#)
        } catch {
            member.stop()
            throw error
        }
        return member
    }

    /// Runs `meshnode call … --json` to the end and returns its report.
    func call(_ name: String, to address: String, node: String, duration: Int, command: String = "call", extra: [String] = [],
              expectExit: Int32 = 0) async throws -> [String: Any] {
        _ = try await options(name)
        let process = try startCall(name, to: address, node: node, duration: duration, command: command, extra: extra)
        let status = await process.waitForExit(timeout: .seconds(duration) + TestDeadline.event * 2)
        let report = try Self.report(from: process.output)
        #expect(status == expectExit, "exit \(String(describing: status)): \(process.output.suffix(2000))")
        return report
    }

    static func report(from output: String) throws -> [String: Any] {
        guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix("{") && $0.contains("\"streams\"") }),
              let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        else { throw TestFailure("no JSON report in:\n\(output.suffix(2000))") }
        return object
    }

    /// The report a `join --json` printed when its call ended.
    static func callEndedReport(of join: Subprocess) throws -> [String: Any] {
        try report(from: join.output.split(separator: "\n").filter { $0.contains(#""event":"call-ended""#) }.joined(separator: "\n"))
    }

    static func expectMediaBothWays(_ report: [String: Any]) throws {
        #expect(report["ok"] as? Bool == true, "\(report)")
        let streams = try #require(report["streams"] as? [[String: Any]])
        for stream in streams {
            #expect((stream["sentPackets"] as? Int ?? 0) > 0 && (stream["receivedFrames"] as? Int ?? 0) > 0, "\(stream)")
        }
        #expect(report["setupMs"] is Double, "\(report)")
    }

    /// The callee's recording of the call: ffprobe reads both files, and the test-pattern frame
    /// numbers decoded from the video advance. (How many frames a call of a few seconds carries
    /// depends on the machine; that they decode and advance does not.)
    func expectRecording(of callee: Subprocess, from caller: String) async throws {
        try await callee.waitForOutput(#""event":"call-ended""#)
        let files = try FileManager.default.contentsOfDirectory(atPath: recordings).map { recordings + "/" + $0 }
        let video = try #require(files.first { $0.hasSuffix("video.ivf") }, "\(files)")
        let audio = try #require(files.first { $0.hasSuffix("audio.wav") }, "\(files)")
        for (file, codec) in [(video, "vp8"), (audio, "pcm_s16le")] {
            let probe = try await Subprocess.run("ffprobe", ["-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", file])
            #expect(probe.status == 0)
            #expect(probe.output.contains(codec), "\(file): \(probe.output)")
        }
        let numbers = try Self.patternCodes(in: video).map(\.frameNumber)
        #expect(numbers.count >= 2, "\(numbers.count) pattern frames decoded")
        #expect(zip(numbers, numbers.dropFirst()).allSatisfy { $0 < $1 }, "frame numbers do not advance: \(numbers.prefix(40))")
    }

    /// The send times (Unix ms) of the test-pattern pictures in the callee's video recording.
    func recordedSendTimes() throws -> [UInt64] {
        let files = try FileManager.default.contentsOfDirectory(atPath: recordings)
        let video = try #require(files.first { $0.hasSuffix("video.ivf") }, "\(files)")
        return try Self.patternCodes(in: recordings + "/" + video).map(\.sendTimeMilliseconds)
    }

    /// The test-pattern codes of every picture of an IVF file that decodes to one.
    static func patternCodes(in path: String) throws -> [TestPatternCode] {
        let reader = try IVFFileReader(path: path)
        let decoder = try VP8Decoder()
        var codes: [TestPatternCode] = []
        while let frame = try reader.nextFrame() {
            if let picture = try decoder.decode(frame.data), let code = TestPatternCode(reading: picture) { codes.append(code) }
        }
        return codes
    }
}
