import Foundation
import Testing
import TestSupport

/// GStreamer's webrtcbin with Debian's Python bindings (`make test-deps`): the glue runs on
/// Debian's own python3, where python3-gi lives.
let webrtcbinAvailable: Bool = {
    guard FileManager.default.isExecutableFile(atPath: WebRTCbinCallTests.python),
          let check = try? Subprocess(WebRTCbinCallTests.python, ["-c", """
            import gi, websockets, cryptography
            gi.require_version('Gst', '1.0'); gi.require_version('GstWebRTC', '1.0')
            from gi.repository import Gst
            Gst.init(None)
            assert all(Gst.ElementFactory.find(e) for e in ['webrtcbin', 'nicesrc', 'opusenc', 'vp8enc', 'rtpvp8pay', 'vp8dec', 'opusdec'])
            """])
    else { return false }
    return check.waitUntilExit() == 0
}()

/// Issue 18 item 2: GStreamer's webrtcbin as a peer — libnice like us, but its SDP, DTLS and RTP
/// are GStreamer's. `Tests/Interop/webrtcbin_peer.py` was written from docs/protocol.md and
/// docs/calls.md alone: its own Ed25519 key, login, signed call setup with trickle ICE, Opus and
/// VP8 from GStreamer's test sources, GStreamer's decoders counting what arrives.
///
/// Found by these tests: webrtcbin offers its video bundle-only with port 0 (as Firefox does,
/// `JSEPAnswerTests`), and names its mids `audio0`/`video1`, while our end-of-candidates said
/// `sdpMid` "0" whatever the session's mids (the glue refuses an unknown mid, as a browser's
/// addIceCandidate does).
@Suite("GStreamer webrtcbin ↔ CLI calls", .serialized, .timeLimit(.minutes(5)),
       .enabled(if: webrtcbinAvailable, "GStreamer's webrtcbin for Debian's python3 is missing: install gstreamer1.0-plugins-bad, gstreamer1.0-nice, gstreamer1.0-plugins-good, python3-gst-1.0, gir1.2-gst-plugins-bad-1.0, python3-websockets (`make test-deps`)"))
struct WebRTCbinCallTests {
    static let python = "/usr/bin/python3"
    static let glue = TestFiles.url("Tests/Interop/webrtcbin_peer.py").path

    /// Runs the glue to its end and returns its `result` line; fails with its output otherwise.
    func runGlue(_ arguments: [String], node: MeshNodeServer, home: CallPeers, name: String,
                 during: ((Subprocess) async throws -> Void)? = nil) async throws -> [String: Any] {
        let glue = try Subprocess(Self.python, [Self.glue, "--node", node.signalingURL, "--name", name,
                                                "--identity", home.home.path + "/\(name).gst-id", "--ice-address", "127.0.0.1", "--wait", "60"]
                                  + arguments, name: "webrtcbin_peer.py")
        if let during { try await during(glue) }
        // Each wait of the glue is bounded (30 s); this only catches a hung process.
        let status = await glue.waitForExit(timeout: .seconds(200))
        let output = glue.output
        guard status == 0, let line = output.split(separator: "\n").last(where: { $0.contains("\"event\": \"result\"") }),
              let result = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw TestFailure("webrtcbin_peer.py exited \(status.map(String.init) ?? "(killed)"):\n\(output.suffix(4000))")
        }
        print("webrtcbin: \(line)")
        return result
    }

    static func decoded(_ result: [String: Any], _ kind: String) -> Int {
        ((result["received"] as? [String: Any])?[kind] as? [String: Any])?["decoded"] as? Int ?? 0
    }

    @Test("webrtcbin calls a CLI peer (webrtcbin offers, bundle-only video): both sides decode audio and video; our end-of-candidates names its mid")
    func webrtcbinCallsCLI() async throws {
        let node = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { node.stop() }
        let peers = try CallPeers("webrtcbin-calls-cli")
        let bob = try await peers.join("bob", node: node.signalingURL)
        defer { bob.stop() }
        let result = try await runGlue(["call", "bob", "--kind", "video", "--seconds", "4"], node: node, home: peers, name: "gst")
        #expect(Self.decoded(result, "audio") > 0 && Self.decoded(result, "video") > 0, "\(result)")
        let video = (result["received"] as? [String: Any])?["video"] as? [String: Any]
        #expect(video?["width"] as? Int == 640 && video?["height"] as? Int == 360, "our test pattern is 640x360: \(String(describing: video))")
        #expect(result["remoteEndOfCandidates"] as? Bool == true, "\(result)")
        try await bob.waitForOutput(#""event":"call-ended""#)
        let report = try CallPeers.callEndedReport(of: bob)
        try CallPeers.expectMediaBothWays(report)
        let received = (report["streams"] as? [[String: Any]])?.first { $0["kind"] as? String == "video" }
        #expect(received?["width"] as? Int == 320, "webrtcbin sends 320x240: \(String(describing: received))")
        print("webrtcbin → CLI: call request → both decoded at webrtcbin \(result["setupMs"] ?? "-") ms; CLI setupMs \(report["setupMs"] ?? "-")")
    }

    @Test("a CLI peer calls webrtcbin (we offer, webrtcbin answers): media both ways", arguments: ["video", "audio"])
    func cliCallsWebrtcbin(kind: String) async throws {
        let node = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { node.stop() }
        let peers = try CallPeers("cli-calls-webrtcbin-\(kind)")
        var report: [String: Any] = [:]
        let result = try await runGlue(["answer", "--seconds", "4"], node: node, home: peers, name: "gst") { glue in
            try await glue.waitForOutput("logged-in")
            report = try await peers.call("alice", to: "gst", node: node.signalingURL, duration: 4, extra: kind == "audio" ? ["--audio"] : [])
        }
        try CallPeers.expectMediaBothWays(report)
        #expect(report["kind"] as? String == kind, "\(report)")
        #expect(Self.decoded(result, "audio") > 0, "\(result)")
        if kind == "video" { #expect(Self.decoded(result, "video") > 0, "\(result)") }
        #expect(result["remoteEndOfCandidates"] as? Bool == true, "\(result)")
        print("CLI → webrtcbin (\(kind)): CLI setupMs \(report["setupMs"] ?? "-"); webrtcbin request → decoded \(result["setupMs"] ?? "-") ms")
    }
}
