import Codecs
import Foundation
import Testing
import TestSupport

/// Interop of the CLI peer (`meshnode call`/`join`/`share`) with Chromium on the web page: each
/// side offers once, so both our JSEP offer and our answer to Chromium's offer are exercised.
@Suite("CLI ↔ Chromium calls", .serialized, .timeLimit(.minutes(10)),
       .enabled(if: chromiumAvailable, "chromium, chromedriver or selenium is missing: install Debian's chromium and chromium-driver, and selenium (`make test-deps`)"))
struct BrowserCallTests {
    let browser = BrowserTests()

    @Test("Chromium calls a CLI peer (Chromium offers): both decode video and receive audio; the CLI records the call")
    func browserCallsCLI() async throws {
        let node = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { node.stop() }
        let peers = try CallPeers("browser-calls-cli")
        let bob = try await peers.join("bob", node: node.signalingURL)
        defer { bob.stop() }
        let result = try await browser.runDriver(["call", "--name", "carol", "--to", "bob", "--kind", "video", "--seconds", "4"],
                                                 url: "http://127.0.0.1:\(node.httpPort)/")
        // How many frames arrive in the call's seconds depends on the machine: that some were
        // decoded and audio came is the point.
        let stats = try #require(result["stats"] as? [String: Any])
        #expect((stats["framesDecoded"] as? Int ?? 0) > 0, "Chromium decoded none of our frames: \(stats)")
        #expect((stats["audioPackets"] as? Int ?? 0) > 0, "\(stats)")
        try await bob.waitForOutput(#""event":"call-ended""#)
        let report = try CallPeers.callEndedReport(of: bob)
        try CallPeers.expectMediaBothWays(report)
        let files = try FileManager.default.contentsOfDirectory(atPath: peers.recordings)
        #expect(files.contains { $0.hasPrefix("carol") && $0.hasSuffix("video.ivf") } && files.contains { $0.hasSuffix("audio.wav") }, "\(files)")
    }

    @Test("a CLI peer calls Chromium (we offer): media both ways")
    func cliCallsBrowser() async throws {
        let node = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { node.stop() }
        let peers = try CallPeers("cli-calls-browser")
        var callReport: [String: Any] = [:]
        let result = try await browser.runDriver(["answer", "--name", "carol", "--seconds", "4", "--wait", "120"],
                                                 url: "http://127.0.0.1:\(node.httpPort)/") { driver in
            try await driver.waitForOutput("logged-in")
            callReport = try await peers.call("alice", to: "carol", node: node.signalingURL, duration: 4)
        }
        try CallPeers.expectMediaBothWays(callReport)
        let stats = try #require(result["stats"] as? [String: Any])
        #expect((stats["framesDecoded"] as? Int ?? 0) > 0, "\(stats)")
        #expect((stats["audioPackets"] as? Int ?? 0) > 0, "\(stats)")
    }

    @Test("Chromium switches from its camera to a screen share mid-call (Share screen, a track replacement): the CLI peer (join --accept auto) keeps decoding, now the screen")
    func browserSwitchesToShareWithCLI() async throws {
        let node = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { node.stop() }
        let peers = try CallPeers("switch-to-share")
        let bob = try await peers.join("bob", node: node.signalingURL)
        defer { bob.stop() }
        let result = try await browser.runDriver(["call", "--name", "carol", "--to", "bob", "--kind", "video", "--seconds", "4", "--share-after", "2"],
                                                 url: "http://127.0.0.1:\(node.httpPort)/")
        let shared = try #require(result["shared"] as? [String: Any], "the page did not switch: \(result)")
        try await bob.waitForOutput(#""event":"call-ended""#)
        let report = try CallPeers.callEndedReport(of: bob)
        try CallPeers.expectMediaBothWays(report)
        print("switch to share: page: \(shared)")
        try Self.expectCameraThenScreen(recordings: peers.recordings)
    }

    @Test("in an audio call with a CLI peer (join --accept auto), Share screen sends a new offer that adds video; the CLI answers it within the ICE and DTLS session it has: the page shares, the CLI records the screen, audio goes on")
    func browserShareInAudioCallWithCLI() async throws {
        let node = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { node.stop() }
        let peers = try CallPeers("audio-share-cli")
        let bob = try await peers.join("bob", node: node.signalingURL)
        defer { bob.stop() }
        let result = try await browser.runDriver(["call", "--name", "carol", "--to", "bob", "--kind", "audio", "--seconds", "4", "--share-after", "1"],
                                                 url: "http://127.0.0.1:\(node.httpPort)/")
        let shared = try #require(result["shared"] as? [String: Any], "\(result)")
        #expect(shared["outcome"] as? String == "sharing", "the page's offer that adds video was not answered: \(shared)")
        // "sharing" is reached only when the answer came back: without one the page withdraws
        // its offer after 5 s and reports "refused" (web/call.js addVideo).
        let stats = try #require(result["stats"] as? [String: Any])
        #expect((stats["audioPackets"] as? Int ?? 0) > 0, "\(stats)")
        try await bob.waitForOutput(#""event":"call-ended""#)
        try Self.expectAudioBothWaysAndScreenReceived(try CallPeers.callEndedReport(of: bob), recordings: peers.recordings)
        #expect(bob.output.contains("answered a renegotiation"), "\(bob.output.suffix(2000))")
    }

    @Test("a CLI peer calls Chromium for audio (meshnode call --audio), the page shares its screen as the callee: the CLI, as the caller, answers the page's offer and records the screen")
    func calleeBrowserSharesInAudioCallWithCLI() async throws {
        let node = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { node.stop() }
        let peers = try CallPeers("audio-share-cli-caller")
        var callReport: [String: Any] = [:]
        let result = try await browser.runDriver(["answer", "--name", "carol", "--seconds", "15", "--wait", "120", "--share-after", "1"],
                                                 url: "http://127.0.0.1:\(node.httpPort)/") { driver in
            try await driver.waitForOutput("logged-in")
            callReport = try await peers.call("alice", to: "carol", node: node.signalingURL, duration: 6, extra: ["--audio", "--record", peers.recordings])
        }
        #expect(result["shared"] is [String: Any], "the page did not share: \(result)")
        try Self.expectAudioBothWaysAndScreenReceived(callReport, recordings: peers.recordings)
    }

    /// An audio call to which the page added its screen: audio both ways, the added video only
    /// received (the CLI sends no video in an audio call), no ICE restart (a renegotiation keeps
    /// the session), and the recording holds the page's screen (its fake screen is 16:9).
    static func expectAudioBothWaysAndScreenReceived(_ report: [String: Any], recordings: String) throws {
        #expect(report["ok"] as? Bool == true, "\(report)")
        #expect(report["iceRestarts"] as? Int == 0, "a renegotiation is no ICE restart: \(report)")
        let streams = try #require(report["streams"] as? [[String: Any]])
        let audio = try #require(streams.first { $0["kind"] as? String == "audio" }, "\(streams)")
        #expect((audio["sentPackets"] as? Int ?? 0) > 0 && (audio["receivedFrames"] as? Int ?? 0) > 0, "\(audio)")
        let video = try #require(streams.first { $0["kind"] as? String == "video" }, "no video stream after the renegotiation: \(streams)")
        #expect(video["receiving"] as? Bool == true && video["sending"] as? Bool == false, "\(video)")
        #expect((video["receivedFrames"] as? Int ?? 0) > 0, "\(video)")
        let path = try #require(try FileManager.default.contentsOfDirectory(atPath: recordings).first { $0.hasSuffix("video.ivf") },
                                "no video recording in \(recordings)")
        let reader = try IVFFileReader(path: recordings + "/" + path)
        let decoder = try VP8Decoder()
        var screen = 0
        var total = 0
        while let frame = try reader.nextFrame() {
            if let picture = try decoder.decode(frame.data) {
                total += 1
                if picture.width * 2 > picture.height * 3 { screen += 1 }
            }
        }
        print("audio call, screen added: \(screen) screen pictures of \(total) recorded")
        #expect(screen >= 10, "the CLI recorded \(screen) screen pictures (\(total) in all)")
    }

    @Test("a CLI peer calls Chromium, which switches to a screen share mid-call as the callee: the CLI keeps decoding, now the screen")
    func calleeBrowserSwitchesToShare() async throws {
        let node = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { node.stop() }
        let peers = try CallPeers("callee-switch-to-share")
        var callReport: [String: Any] = [:]
        let result = try await browser.runDriver(["answer", "--name", "carol", "--seconds", "15", "--wait", "120", "--share-after", "2"],
                                                 url: "http://127.0.0.1:\(node.httpPort)/") { driver in
            try await driver.waitForOutput("logged-in")
            callReport = try await peers.call("alice", to: "carol", node: node.signalingURL, duration: 7, extra: ["--record", peers.recordings])
        }
        try CallPeers.expectMediaBothWays(callReport)
        #expect(result["shared"] is [String: Any], "the page did not switch: \(result)")
        try Self.expectCameraThenScreen(recordings: peers.recordings)
    }

    /// The CLI's recording of the browser's video: camera pictures (Chromium's fake camera, 4:3),
    /// then screen pictures (its fake screen, 16:9) that keep coming to the end of the call.
    /// Shapes, not sizes: a loaded encoder scales pictures down but keeps their shape.
    static func expectCameraThenScreen(recordings: String) throws {
        let path = try #require(try FileManager.default.contentsOfDirectory(atPath: recordings).first { $0.hasSuffix("video.ivf") })
        let reader = try IVFFileReader(path: recordings + "/" + path)
        let decoder = try VP8Decoder()
        var shapes: [Bool] = []  // true: wider than 3:2 (the screen)
        while let frame = try reader.nextFrame() {
            if let picture = try decoder.decode(frame.data) { shapes.append(picture.width * 2 > picture.height * 3) }
        }
        let camera = shapes.prefix { !$0 }.count
        let screen = shapes.dropFirst(camera).filter { $0 }.count
        print("switch to share: \(camera) camera pictures, then \(screen) screen pictures of \(shapes.count)")
        #expect(camera > 0, "no camera pictures before the switch")
        #expect(screen >= 10 && shapes.last == true, "the CLI decoded \(screen) screen pictures after the switch (\(shapes.count) in all)")
    }

    @Test("desktop share: Chromium shares its screen with a CLI peer")
    func browserSharesWithCLI() async throws {
        let node = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { node.stop() }
        let peers = try CallPeers("share-browser")
        let bob = try await peers.join("bob", node: node.signalingURL)
        defer { bob.stop() }
        _ = try await browser.runDriver(["call", "--name", "carol", "--to", "bob", "--kind", "desktop", "--seconds", "3"],
                                        url: "http://127.0.0.1:\(node.httpPort)/")
        try await bob.waitForOutput(#""event":"call-ended""#)
        let bobReport = try CallPeers.callEndedReport(of: bob)
        #expect(bobReport["kind"] as? String == "desktop")
        let received = (bobReport["streams"] as? [[String: Any]])?.first { $0["kind"] as? String == "video" }
        #expect((received?["receivedFrames"] as? Int ?? 0) > 0, "\(bobReport)")
    }

    @Test("desktop share: a CLI peer shares an Xvfb screen with Chromium",
          .enabled(if: Tools.xvfb, "Xvfb or xsetroot is not installed (Debian xvfb, x11-xserver-utils; `make deps` installs them)"))
    func cliSharesWithBrowser() async throws {
        let node = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { node.stop() }
        let peers = try CallPeers("share-xvfb")
        let display = try await VirtualDisplay.start(width: 1024, height: 768)
        defer { withExtendedLifetime(display) {} }
        var shareReport: [String: Any] = [:]
        let result = try await browser.runDriver(["answer", "--name", "dave", "--seconds", "3", "--wait", "120"],
                                                 url: "http://127.0.0.1:\(node.httpPort)/") { driver in
            try await driver.waitForOutput("logged-in")
            shareReport = try await peers.call("alice", to: "dave", node: node.signalingURL, duration: 3, command: "share",
                                               extra: ["--source", "x11:\(display.name)"])
        }
        #expect(shareReport["ok"] as? Bool == true, "\(shareReport)")
        let stats = try #require(result["stats"] as? [String: Any])
        #expect(stats["frameSize"] as? String == "1024x768", "\(stats)")
        #expect((stats["framesDecoded"] as? Int ?? 0) > 0, "\(stats)")
    }
}
