import Foundation
import Testing

/// Interop of the CLI peer (`meshnode call`/`join`/`share`) with Chromium on the web page: each
/// side offers once, so both our JSEP offer and our answer to Chromium's offer are exercised.
@Suite("CLI ↔ Chromium calls", .serialized, .timeLimit(.minutes(3)),
       .enabled(if: chromiumAvailable, "chromium or chromedriver is missing: install Debian's chromium and chromium-driver (`make test-deps`)"))
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
                                                 url: "http://127.0.0.1:\(node.httpPort)/", timeout: 90)
        let stats = try #require(result["stats"] as? [String: Any])
        #expect((stats["framesDecoded"] as? Int ?? 0) > 30, "Chromium decoded too few of our frames: \(stats)")
        #expect((stats["audioPackets"] as? Int ?? 0) > 50, "\(stats)")
        try await bob.waitForOutput(#""event":"call-ended""#, timeout: 15)
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
        let result = try await browser.runDriver(["answer", "--name", "carol", "--seconds", "4", "--wait", "60"],
                                                 url: "http://127.0.0.1:\(node.httpPort)/", timeout: 90) { driver in
            try await driver.waitForOutput("logged-in", timeout: 30)
            callReport = try await peers.call("alice", to: "carol", node: node.signalingURL, duration: 4)
        }
        try CallPeers.expectMediaBothWays(callReport)
        let stats = try #require(result["stats"] as? [String: Any])
        #expect((stats["framesDecoded"] as? Int ?? 0) > 30, "\(stats)")
        #expect((stats["audioPackets"] as? Int ?? 0) > 50, "\(stats)")
    }

    @Test("desktop share: Chromium shares its screen with a CLI peer, and a CLI peer shares an Xvfb screen with Chromium")
    func desktopShareBothWays() async throws {
        let node = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { node.stop() }
        let peers = try CallPeers("share-browser")
        let bob = try await peers.join("bob", node: node.signalingURL)
        defer { bob.stop() }
        _ = try await browser.runDriver(["call", "--name", "carol", "--to", "bob", "--kind", "desktop", "--seconds", "3"],
                                        url: "http://127.0.0.1:\(node.httpPort)/", timeout: 90)
        try await bob.waitForOutput(#""event":"call-ended""#, timeout: 15)
        let bobReport = try CallPeers.callEndedReport(of: bob)
        #expect(bobReport["kind"] as? String == "desktop")
        let received = (bobReport["streams"] as? [[String: Any]])?.first { $0["kind"] as? String == "video" }
        #expect((received?["receivedFrames"] as? Int ?? 0) > 10, "\(bobReport)")

        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/Xvfb") else { return }
        let number = (600..<800).first { !FileManager.default.fileExists(atPath: "/tmp/.X11-unix/X\($0)") } ?? 799
        let xvfb = try Subprocess("/usr/bin/Xvfb", [":\(number)", "-screen", "0", "1024x768x24", "-nolisten", "tcp", "-noreset"], name: "Xvfb")
        defer { xvfb.terminate(SIGKILL) }
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: "/tmp/.X11-unix/X\(number)") { try await Task.sleep(for: .milliseconds(50)) }
        var shareReport: [String: Any] = [:]
        let result = try await browser.runDriver(["answer", "--name", "dave", "--seconds", "3", "--wait", "60"],
                                                 url: "http://127.0.0.1:\(node.httpPort)/", timeout: 90) { driver in
            try await driver.waitForOutput("logged-in", timeout: 30)
            shareReport = try await peers.call("alice", to: "dave", node: node.signalingURL, duration: 3, command: "share",
                                               extra: ["--source", "x11::\(number)"])
        }
        #expect(shareReport["ok"] as? Bool == true, "\(shareReport)")
        let stats = try #require(result["stats"] as? [String: Any])
        #expect(stats["frameSize"] as? String == "1024x768", "\(stats)")
        #expect((stats["framesDecoded"] as? Int ?? 0) > 10, "\(stats)")
    }
}
