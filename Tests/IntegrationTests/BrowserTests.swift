import Foundation
import Testing

/// Debian's chromium and chromedriver (`make test-deps` installs them with selenium).
let chromiumAvailable: Bool = {
    let env = ProcessInfo.processInfo.environment
    return FileManager.default.isExecutableFile(atPath: env["MESHNODE_CHROMIUM"] ?? "/usr/bin/chromium")
        && FileManager.default.isExecutableFile(atPath: env["MESHNODE_CHROMEDRIVER"] ?? "/usr/bin/chromedriver")
}()

/// The web page (web/) in headless Chromium, driven by `Tests/Browser/meshnode_browser.py`
/// through the page's `window.meshnodeTest` hook (docs/web.md). Each Chromium has its own
/// profile, so its own Ed25519 key; fake camera, microphone and screen stand in for devices.
@Suite("Web page in headless Chromium", .serialized, .timeLimit(.minutes(3)),
       .enabled(if: chromiumAvailable, "chromium or chromedriver is missing: install Debian's chromium and chromium-driver (`make test-deps`)"))
struct BrowserTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let driver = packageRoot.appendingPathComponent("Tests/Browser/meshnode_browser.py").path
    /// Screenshots of the pages during calls, kept after the run.
    static let artifacts = ProcessInfo.processInfo.environment["MESHNODE_ARTIFACTS"]
        ?? packageRoot.appendingPathComponent(".build/test-artifacts/browser").path

    /// Runs the driver and returns its `result` line; fails with the driver's whole output otherwise.
    func runDriver(_ arguments: [String], url: String, timeout: Double, during: ((Subprocess) async throws -> Void)? = nil) async throws -> [String: Any] {
        let driver = try Subprocess("python3", [Self.driver, "--url", url, "--artifacts", Self.artifacts] + arguments, name: "meshnode_browser.py")
        if let during { try await during(driver) }
        let status = await driver.waitForExit(timeout: timeout)
        let output = driver.output
        let resultLine = output.split(separator: "\n").last { $0.contains("\"event\": \"result\"") }
        guard status == 0, let resultLine,
              let result = try JSONSerialization.jsonObject(with: Data(resultLine.utf8)) as? [String: Any] else {
            throw TestFailure("browser driver exited \(status.map(String.init) ?? "(killed after \(timeout) s)"):\n\(output)")
        }
        print("browser driver: \(resultLine)")
        return result
    }

    @Test("two pages log in, see each other online, chat, make a video call with audio, reject a call, share a desktop and call through the node's TURN")
    func browserToBrowser() async throws {
        // Relaying to loopback is refused by default; the relay-only call needs it here.
        let node = try await MeshNodeServer(["--allow-peer", "127.0.0.0/8"], bind: ["127.0.0.1"])
        defer { node.stop() }
        let result = try await runDriver(["scenario", "chat", "call", "reject", "desktop", "relay"], url: "http://127.0.0.1:\(node.httpPort)/", timeout: 120)
        let scenarios = result["scenarios"] as? [String: [String: Any]] ?? [:]
        #expect(Set(scenarios.keys) == ["chat", "call", "reject", "desktop", "relay"])
        // framesDecoded grew on both sides between two stats samples (the driver checks audio too).
        let growth = scenarios["call"]?["framesDecodedGrowth"] as? [Int] ?? []
        #expect(growth.count == 2 && growth.allSatisfy { $0 > 0 }, "frames decoded did not grow: \(growth)")
        let shot = scenarios["call"]?["screenshot"] as? String ?? ""
        #expect(FileManager.default.fileExists(atPath: shot), "no screenshot at \(shot)")
        print("browser call screenshot: \(shot)")
    }

    @Test("after a node restart on the same port the pages are back online within 5 s + jitter, with presence and unsent chat")
    func reconnectAfterNodeRestart() async throws {
        let dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("meshnode-data-\(UUID().uuidString)").path
        let first = try await MeshNodeServer(["--data-dir", dataDir], bind: ["127.0.0.1"])
        let port = first.httpPort
        var second: MeshNodeServer?
        defer {
            first.stop()
            second?.stop()
        }
        let result = try await runDriver(["scenario", "reconnect"], url: "http://127.0.0.1:\(port)/", timeout: 60) { driver in
            try await driver.waitForOutput("restart-node", timeout: 30)
            // A crash, not a goodbye: the pages learn it from the closed socket.
            first.process.terminate(SIGKILL)
            _ = await first.process.waitForExit(timeout: 5)
            second = try await MeshNodeServer(["--data-dir", dataDir], bind: ["127.0.0.1"], httpPort: port)
        }
        let reconnect = (result["scenarios"] as? [String: [String: Any]])?["reconnect"] ?? [:]
        let upToOnline = reconnect["nodeUpToOnlineMs"] as? Int ?? .max
        #expect(upToOnline <= 7500, "back online \(upToOnline) ms after the node")
    }
}
